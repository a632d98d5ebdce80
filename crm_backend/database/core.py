"""One async engine per process; SQLite gets the pragmas it needs to share a file with the worker."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Any

import annotated_types
from sqlalchemy import DateTime, MetaData, event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

from crm_backend.database.hot_path import HotPath

#: An id of a row as the API takes it: a positive number within the INTEGER range of the primary
#: keys, so an out-of-range id is refused as bad input instead of failing in the database.
RowId = Annotated[int, annotated_types.Interval(ge=1, le=2**31 - 1)]

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC timestamps on every backend (SQLite drops the offset otherwise)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets the web app write while the worker reads; FULL keeps a stored push on disk before we ack.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def make_engine(url: str) -> AsyncEngine:
    if url.startswith("sqlite"):
        from pathlib import Path

        path = url.split(":///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    # No pre-ping: it costs a round trip on every checkout, several per message. A
    # connection PostgreSQL dropped fails one attempt, which the at-least-once queues retry.
    # LIFO: the most recently used connection is handed out again, so the hot statements' prepared
    # plans on it are reused instead of every pooled connection planning them anew (planning the
    # pending-push query takes longer than running it).
    return create_async_engine(url, pool_size=10, max_overflow=20, pool_recycle=1800, pool_use_lifo=True)


class Database:
    """Engine plus session factory, created once per process from settings."""

    def __init__(self, url: str, *, fast_path: bool = True) -> None:
        self.url = url
        self.engine: AsyncEngine = make_engine(url)
        #: For work that is one statement (a read, or a write that is atomic on its own): no
        #: BEGIN/COMMIT round trips. Shares the engine's pool.
        self.single_statements: AsyncEngine = self.engine.execution_options(isolation_level="AUTOCOMMIT")
        #: The few statements a patient waits on (see hot_path.py).
        self.hot_path = HotPath(self.single_statements, fast=fast_path)
        self.sessions: async_sessionmaker[AsyncSession] = async_sessionmaker(
            self.engine, expire_on_commit=False
        )

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")

    async def session(self) -> AsyncIterator[AsyncSession]:
        async with self.sessions() as session:
            yield session

    async def dispose(self) -> None:
        await self.engine.dispose()
