"""Accept a push: store it durably exactly once, then hand it to the processing queue."""

from __future__ import annotations

import enum
import logging
from datetime import UTC, datetime

from redis.exceptions import RedisError
from sqlalchemy.exc import IntegrityError

from channels.wechat_oa.push import WeChatPush
from crm_backend.conversations.models import InboundMessage
from crm_backend.runtime import Runtime

log = logging.getLogger(__name__)

#: WeChat retries within seconds; a replay days later is still caught by the database constraint.
DEDUPE_TTL_SECONDS = 3 * 24 * 3600


class Accepted(enum.Enum):
    STORED = "stored"
    DUPLICATE = "duplicate"


async def accept_push(runtime: Runtime, app_id: str, push: WeChatPush) -> Accepted:
    settings = runtime.settings
    key = push.dedupe_key(app_id)
    redis_key = settings.key("dedupe", key)
    try:
        if await runtime.redis.exists(redis_key):
            return Accepted.DUPLICATE
    except RedisError as exc:  # the database constraint still guards us
        log.warning("dedupe fast path unavailable: %s", exc)

    inbound = InboundMessage(
        dedupe_key=key,
        app_id=app_id,
        openid=push.openid,
        msg_type=push.msg_type,
        event=push.event,
        wechat_msg_id=push.msg_id,
        create_time=push.create_time,
        payload=push.fields,
        received_at=datetime.now(UTC),
    )
    async with runtime.db.sessions() as session:
        session.add(inbound)
        try:
            await session.commit()
        except IntegrityError:
            return Accepted.DUPLICATE

    try:
        async with runtime.redis.pipeline(transaction=False) as pipe:
            pipe.set(redis_key, inbound.id, ex=DEDUPE_TTL_SECONDS)
            pipe.xadd(
                runtime.inbound.stream,
                {"inbound_id": str(inbound.id), "app_id": app_id, "openid": push.openid},
                maxlen=100_000,
                approximate=True,
            )
            await pipe.execute()
    except RedisError as exc:
        # Stored is what matters: the sweeper re-queues anything that was never handed over.
        log.warning("inbound %s stored but not queued: %s", inbound.id, exc)
    return Accepted.STORED
