"""Accept a push: store it durably exactly once, then hand it to the processing queue.

Under load, pushes arriving together are written in one transaction (group commit): each request
still waits until its own row is committed before WeChat gets "success", but a burst costs one
commit instead of one per push. Duplicates are detected by the unique `dedupe_key` in the same
statement (`ON CONFLICT DO NOTHING ... RETURNING`), so a retry racing its original is stored once.
A Redis key per stored push answers WeChat's retries without waiting for the database.
"""

from __future__ import annotations

import asyncio
import enum
import json
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from redis.exceptions import RedisError
from sqlalchemy.engine.interfaces import Dialect

from crm_backend.background import BackgroundLoop
from crm_backend.conversations.models import InboundMessage, InboundStatus
from crm_backend.database.hot_path import insert_for
from crm_backend.database.outage import unreachable
from crm_backend.runtime import Runtime

log = logging.getLogger(__name__)

#: WeChat retries within seconds; a replay days later is still caught by the database constraint.
DEDUPE_TTL_SECONDS = 3 * 24 * 3600
#: Most rows one group commit writes.
MAX_BATCH = 200


class Push(Protocol):
    """What accepting needs of a push. The channel that parsed it (channels/wechat_oa/push.py's
    WeChatPush) calls in here, so this side names the shape instead of importing the channel."""

    @property
    def fields(self) -> dict[str, str]: ...

    @property
    def openid(self) -> str: ...

    @property
    def create_time(self) -> int: ...

    @property
    def msg_type(self) -> str: ...

    @property
    def event(self) -> str | None: ...

    @property
    def msg_id(self) -> int | None: ...

    def dedupe_key(self, app_id: str) -> str: ...


#: Pauses between tries while the database is out of reach (doubling up to the second).
DATABASE_RETRY_FIRST_PAUSE = 0.1
DATABASE_RETRY_MAX_PAUSE = 1.0


class Accepted(enum.Enum):
    STORED = "stored"
    DUPLICATE = "duplicate"


@dataclass
class _Pending:
    row: dict[str, Any]
    done: asyncio.Future[int | None]


class InboundWriter(BackgroundLoop):
    """Group-commits inbound rows for one web process."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self.hot_path = runtime.db.hot_path
        insert = insert_for(runtime.db.engine)
        self._statement = (
            insert(InboundMessage)
            .on_conflict_do_nothing(index_elements=["dedupe_key"])
            .returning(InboundMessage.id, InboundMessage.dedupe_key, sort_by_parameter_order=True)
        )
        self._unnest = _unnest_insert(runtime.db.engine.dialect) if self.hot_path.on_asyncpg else ""
        #: Writes in flight (the loop's batch, a lone push's own).
        self._writing = 0

    @property
    def idle(self) -> bool:
        """Nothing written or queued: a retry's insert, which nobody awaits, has finished."""
        return not self._writing and self._queue.empty()

    async def store(self, row: dict[str, Any]) -> int | None:
        """The new row's id once committed, or None if `dedupe_key` was already stored."""
        if not self.running:
            raise RuntimeError("inbound writer is not running")
        if not self._writing and self._queue.empty():
            # Nothing in flight: a lone push is written from its own request, sparing the two task
            # switches of a hand-off to the loop. Pushes arriving meanwhile queue up for the loop.
            self._writing += 1
            try:
                return (await self._write([row])).get(row["dedupe_key"])
            finally:
                self._writing -= 1
        done: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        await self._queue.put(_Pending(row, done))
        return await done

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < MAX_BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            self._writing += 1
            try:
                ids = await self._write([item.row for item in batch])
            except Exception as exc:
                for item in batch:
                    if not item.done.done():
                        item.done.set_exception(exc)
                continue
            finally:
                self._writing -= 1
            claimed: set[str] = set()
            for item in batch:
                key = item.row["dedupe_key"]
                # A key repeated within the batch is stored once: only its first request gets the id.
                new_id = ids.get(key) if key not in claimed else None
                claimed.add(key)
                if not item.done.done():
                    item.done.set_result(new_id)

    async def _write(self, batch: list[dict[str, Any]]) -> dict[str, int]:
        """Insert the batch; returns the new ids of the keys that were not stored before.

        While the database is out of reach the pushes are held and the insert tried again, for up
        to WEBHOOK_DATABASE_WAIT_SECONDS: WeChat waits 5 s for an answer and tries three times, so
        a short outage (a failover, a restart) costs the patient a delay instead of WeChat's "this
        account cannot answer now". A push stored after WeChat gave up is still answered."""
        deadline = time.monotonic() + self.runtime.settings.webhook_database_wait_seconds
        pause = DATABASE_RETRY_FIRST_PAUSE
        while True:
            try:
                return await self._insert(batch)
            except Exception as exc:
                if not unreachable(exc) or time.monotonic() + pause > deadline:
                    raise
                log.warning("database out of reach, %s pushes held: %s", len(batch), exc)
            await asyncio.sleep(pause)
            for row in batch:
                row["received_at"] = datetime.now(UTC)  # when it is stored, for the sweeper's grace
            pause = min(pause * 2, DATABASE_RETRY_MAX_PAUSE)

    async def _insert(self, batch: list[dict[str, Any]]) -> dict[str, int]:
        rows = list({row["dedupe_key"]: row for row in reversed(batch)}.values())
        if self._unnest:
            # One statement for any batch size: each column travels as one array (asyncpg, see
            # database/hot_path.py). Commits on its own, like the statement below.
            columns = [[_bindable(row[name]) for row in rows] for name in _COLUMNS]
            result = await self.hot_path.fetch_sql(self._unnest, *columns)
            return {key: row_id for row_id, key in result}
        # One multi-row INSERT (SQLAlchemy's insertmanyvalues; compiled once and cached) commits on
        # its own: no BEGIN/COMMIT round trips. Each row stands alone, so should a huge batch be
        # split into several statements, a failure part-way only makes WeChat retry the pushes
        # not yet acknowledged, which the unique key then finds stored.
        async with self.runtime.db.single_statements.connect() as connection:
            result = await connection.execute(self._statement, rows)
            return {key: row_id for row_id, key in result.all()}


#: Every column the webhook writes, in the order of the batch insert's arrays.
_COLUMNS = (
    "dedupe_key",
    "app_id",
    "openid",
    "msg_type",
    "event",
    "wechat_msg_id",
    "create_time",
    "payload",
    "status",
    "attempts",
    "received_at",
)


def _unnest_insert(dialect: Dialect) -> str:
    """INSERT … SELECT * FROM unnest($1::type[], …) ON CONFLICT DO NOTHING RETURNING id, dedupe_key;
    the column types are the model's, as PostgreSQL names them."""
    table = InboundMessage.__table__
    arrays = ", ".join(
        f"${i}::{table.c[name].type.compile(dialect=dialect)}[]" for i, name in enumerate(_COLUMNS, 1)
    )
    return (
        f"INSERT INTO {table.name} ({', '.join(_COLUMNS)}) SELECT * FROM unnest({arrays}) "
        "ON CONFLICT (dedupe_key) DO NOTHING RETURNING id, dedupe_key"
    )


def _settled(stored: asyncio.Future[int | None]) -> None:
    """A retry's insert that nobody awaits: it stores nothing (the key is taken), or failed."""
    if not stored.cancelled() and stored.exception() is not None:
        log.info("insert of a duplicate push failed: %r", stored.exception())


def _bindable(value: Any) -> Any:
    """What asyncpg takes for one array element: JSON as its text (asyncpg does not encode it)."""
    return json.dumps(value) if isinstance(value, dict) else value


async def accept_push(runtime: Runtime, writer: InboundWriter, app_id: str, push: Push) -> Accepted:
    """The Redis fast path and the insert run side by side: a new push (nearly every push) does not
    wait for the fast path first, and a retry still gets its answer as soon as Redis knows it; its
    insert then finds the key taken and writes nothing."""
    settings = runtime.settings
    key = push.dedupe_key(app_id)
    redis_key = settings.key("dedupe", key)
    stored = asyncio.ensure_future(
        writer.store(
            {
                "dedupe_key": key,
                "app_id": app_id,
                "openid": push.openid,
                "msg_type": push.msg_type,
                "event": push.event,
                "wechat_msg_id": push.msg_id,
                "create_time": push.create_time,
                "payload": push.fields,
                "status": InboundStatus.RECEIVED,
                "attempts": 0,
                "received_at": datetime.now(UTC),
            }
        )
    )
    try:
        if await runtime.redis.exists(redis_key):
            stored.add_done_callback(_settled)
            return Accepted.DUPLICATE
    except RedisError as exc:  # the database constraint still guards us
        log.warning("dedupe fast path unavailable: %s", exc)
    inbound_id = await stored
    if inbound_id is None:
        return Accepted.DUPLICATE

    try:
        async with runtime.redis.pipeline(transaction=False) as pipe:
            pipe.set(redis_key, inbound_id, ex=DEDUPE_TTL_SECONDS)
            pipe.xadd(
                runtime.inbound.stream,
                {"inbound_id": str(inbound_id), "app_id": app_id, "openid": push.openid},
                maxlen=100_000,
                approximate=True,
            )
            await pipe.execute()
    except RedisError as exc:
        # Stored is what matters: the sweeper re-queues anything that was never handed over.
        log.warning("inbound %s stored but not queued: %s", inbound_id, exc)
    return Accepted.STORED
