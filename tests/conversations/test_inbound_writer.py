"""The webhook's group commit: pushes arriving together are stored in one statement, each once.

On PostgreSQL the batch goes to asyncpg as one array per column (database/hot_path.py); on SQLite
through SQLAlchemy. Both must store the same rows and answer duplicates alike.
"""

from __future__ import annotations

import asyncio
import itertools
import time

from sqlalchemy import select

from channels.wechat_oa.push import WeChatPush
from crm_backend.conversations.inbound import Accepted, InboundWriter, accept_push
from crm_backend.conversations.models import InboundMessage, InboundStatus
from crm_backend.runtime import Runtime

_msg_ids = itertools.count(9_100_000_000)


def _push(openid: str, content: str, msg_id: int) -> WeChatPush:
    return WeChatPush.from_fields(
        {
            "ToUserName": "gh_test",
            "FromUserName": openid,
            "CreateTime": "1764556800",
            "MsgType": "text",
            "Content": content,
            "MsgId": str(msg_id),
        }
    )


async def _stored(runtime: Runtime, openid: str) -> list[InboundMessage]:
    async with runtime.db.sessions() as session:
        rows = await session.scalars(
            select(InboundMessage).where(InboundMessage.openid == openid).order_by(InboundMessage.id)
        )
        return list(rows)


async def test_a_burst_is_stored_once_per_push_with_every_field(runtime: Runtime) -> None:
    writer = InboundWriter(runtime)
    writer.start()
    try:
        openid = f"o-writer-{next(_msg_ids)}"
        ids = [next(_msg_ids) for _ in range(5)]
        texts = ["我想挂号", "明天上午", "儿科", "身份证 110101199003071234 的孩子", '<b>"引号"</b> & 符号']
        # The same push three times at once (WeChat retrying) among four others, all in one burst.
        pushes = [_push(openid, t, i) for t, i in zip(texts, ids, strict=True)]
        burst = [*pushes, pushes[0], pushes[0]]
        outcomes = await asyncio.gather(*(accept_push(runtime, writer, "wx-test", p) for p in burst))
        assert outcomes.count(Accepted.STORED) == 5
        assert outcomes.count(Accepted.DUPLICATE) == 2

        rows = await _stored(runtime, openid)
        assert sorted(r.wechat_msg_id for r in rows) == sorted(ids)
        by_id = {r.wechat_msg_id: r for r in rows}
        for push, msg_id in zip(pushes, ids, strict=True):
            row = by_id[msg_id]
            assert row.payload == push.fields
            assert (row.app_id, row.openid, row.msg_type, row.event) == ("wx-test", openid, "text", None)
            assert (row.status, row.attempts, row.create_time) == (InboundStatus.RECEIVED, 0, 1764556800)
            assert row.dedupe_key == push.dedupe_key("wx-test")
            assert row.received_at.tzinfo is not None

        # A retry Redis knows is answered at once; its insert, run alongside, writes nothing.
        assert await accept_push(runtime, writer, "wx-test", pushes[1]) is Accepted.DUPLICATE
        deadline = time.monotonic() + 10
        while not writer.idle:  # the retry's insert has started; wait for it to end
            assert time.monotonic() < deadline, "the retry's insert never finished"
            await asyncio.sleep(0.01)
        assert len(await _stored(runtime, openid)) == 5

        # A retry long after the burst (its Redis mark gone) is still refused by the database.
        await runtime.redis.flushdb()
        assert await accept_push(runtime, writer, "wx-test", pushes[3]) is Accepted.DUPLICATE
        assert len(await _stored(runtime, openid)) == 5
    finally:
        await writer.stop()
