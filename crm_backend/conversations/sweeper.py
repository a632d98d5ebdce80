"""Re-queue work that was stored but never handed over (a process died between the two steps)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from sqlalchemy import or_, select, update

from crm_backend.conversations.models import DeliveryStatus, Direction, InboundMessage, InboundStatus, Message
from crm_backend.conversations.route import DIALOGUE
from crm_backend.runtime import Runtime

log = logging.getLogger(__name__)

#: Longer than any sender keeps a claim: five tries with backoff and 10-second timeouts take about
#: a minute (DELIVERY_MAX_ATTEMPTS, DELIVERY_BACKOFF_SECONDS); a claim this old was abandoned.
CLAIM_LEASE = timedelta(minutes=5)


async def requeue_stale_work(runtime: Runtime) -> tuple[int, int]:
    """Returns how many patients' pushes and conversations' answers were re-queued."""
    now = datetime.now(UTC)
    cutoff = now - timedelta(seconds=runtime.settings.sweeper_grace_seconds)
    async with runtime.db.sessions() as session:
        # Answers whose claiming worker died before it finished sending them go back to PENDING.
        await session.execute(
            update(Message)
            .where(
                Message.direction == Direction.OUT,
                Message.delivery_status == DeliveryStatus.SENDING,
                Message.created_at < now - CLAIM_LEASE,
            )
            .values(delivery_status=DeliveryStatus.PENDING)
        )
        await session.commit()
        patients = (
            await session.execute(
                select(InboundMessage.app_id, InboundMessage.openid)
                .where(
                    InboundMessage.status == InboundStatus.RECEIVED,
                    InboundMessage.received_at < cutoff,
                    # A dialogue whose invitation went out waits for the patient's next message,
                    # which queues the patient anyway (conversations/turns.py).
                    or_(
                        InboundMessage.msg_type != DIALOGUE,
                        InboundMessage.payload["invited_at"].as_string().is_(None),
                    ),
                )
                .distinct()
            )
        ).all()
        conversations = (
            await session.scalars(
                select(Message.conversation_id)
                .where(
                    Message.direction == Direction.OUT,
                    Message.delivery_status == DeliveryStatus.PENDING,
                    Message.created_at < cutoff,
                )
                .distinct()
            )
        ).all()
    for app_id, openid in patients:
        await runtime.inbound.add({"app_id": app_id, "openid": openid, "inbound_id": "sweeper"})
    for conversation_id in conversations:
        await runtime.outbound.add({"conversation_id": str(conversation_id)})
    if patients or conversations:
        log.info("sweeper re-queued %s patients and %s conversations", len(patients), len(conversations))
    return len(patients), len(conversations)
