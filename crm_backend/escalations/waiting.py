"""A patient waiting for staff is not left talking to a wall.

While a chat waits for a person (queued, assigned but not answered yet, or the agent away), the
patient's further messages still go to the console, and the system answers some of them: whether
it does is `route.acknowledge_waiting` (the STAFF route's rule, written once); what it says (the
place in the queue, or when staff are back) is worded here, from what escalations know.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_backend.config import Settings
from crm_backend.conversations import route
from crm_backend.conversations.models import Conversation, Direction, Message, SenderType
from crm_backend.conversations.outgoing import add_outbound
from crm_backend.escalations.hours import describe_opening, is_staffed, next_opening
from crm_backend.escalations.models import Escalation, EscalationStatus
from crm_backend.staff.models import Presence, Staff

#: Message.extra["notice"] of an acknowledgement, so the next one knows when the last went out.
NOTICE_KEY = "notice"
WAITING_NOTICE = "waiting"

REPEATED = "已经在为您转接人工服务，无需重复发送。"
RECEIVED = "您的消息已收到，工作人员会看到。"
LOOKING = "工作人员正在查看您的消息，请稍候。"
AGENT_AWAY = "为您服务的工作人员暂时离开，回来后会尽快回复您，请稍候。"


@dataclass(frozen=True)
class Wait:
    """Where the patient's escalation stands, in the words the acknowledgement needs."""

    staffed: bool
    #: Queued escalations of the team served before this one (0 once someone has it).
    ahead: int
    assigned: bool
    agent_online: bool


def wording(kind: route.WaitingAck, wait: Wait, settings: Settings, now: datetime) -> str:
    """The acknowledgement the patient reads."""
    opening = REPEATED if kind is route.WaitingAck.REPEATED_REQUEST else RECEIVED
    if not wait.staffed:
        when = describe_opening(next_opening(settings, now), now)
        return (
            f"{opening}现在是非工作时间（人工服务时间 {settings.staffed_hours}），"
            f"工作人员将在{when}上班后尽快回复您。如病情紧急，请立即拨打 120 或前往急诊。"
        )
    if not wait.assigned:
        return f"{opening}您前面还有 {wait.ahead} 位，请稍候。"
    return opening + (LOOKING if wait.agent_online else AGENT_AWAY)


async def acknowledge(
    session: AsyncSession,
    settings: Settings,
    escalation: Escalation,
    conversation: Conversation,
    message: Message,
    now: datetime,
    on: route.Route = route.Route.STAFF,
) -> Message | None:
    """Store the acknowledgement of `message` when the rule asks for one (pending: the worker that
    processed the message delivers it with the message's turn); at most one per message."""
    acks = (
        await session.execute(
            select(Message.created_at, Message.reply_to_inbound_id, Message.extra).where(
                Message.conversation_id == conversation.id,
                Message.direction == Direction.OUT,
                Message.sender_type == SenderType.SYSTEM,
                Message.created_at >= escalation.created_at,
            )
        )
    ).all()
    acks = [a for a in acks if (a.extra or {}).get(NOTICE_KEY) == WAITING_NOTICE]
    if message.inbound_id is not None and any(a.reply_to_inbound_id == message.inbound_id for a in acks):
        return None  # a retried turn: already acknowledged
    agent = await session.get(Staff, escalation.assigned_to_id) if escalation.assigned_to_id else None
    agent_online = agent is not None and agent.presence == Presence.online
    wait_state = route.StaffWait(
        answered=escalation.first_response_at is not None,
        agent_online=agent_online,
        agent_last_wrote_at=await session.scalar(
            select(func.max(Message.created_at)).where(
                Message.conversation_id == conversation.id, Message.sender_type == SenderType.AGENT
            )
        ),
        last_ack_at=max((a.created_at for a in acks), default=None),
    )
    text = message.content if message.msg_type in ("text", "voice") else None
    every = timedelta(seconds=settings.waiting_ack_seconds)
    kind = route.acknowledge_waiting(on, text, wait_state, now, every)
    if kind is None:
        return None
    wait = Wait(
        staffed=is_staffed(settings, now),
        ahead=await ahead_of(session, escalation),
        assigned=escalation.status == EscalationStatus.ASSIGNED,
        agent_online=agent_online,
    )
    return add_outbound(
        session,
        conversation,
        SenderType.SYSTEM,
        wording(kind, wait, settings, now),
        reply_to_inbound_id=message.inbound_id,
        extra={NOTICE_KEY: WAITING_NOTICE, "kind": kind.value},
    )


async def ahead_of(session: AsyncSession, escalation: Escalation) -> int:
    """Queued escalations of the same team that are served first (priority, then age)."""
    if escalation.status != EscalationStatus.QUEUED:
        return 0
    count = await session.scalar(
        select(func.count())
        .select_from(Escalation)
        .where(
            Escalation.team_id == escalation.team_id,
            Escalation.status == EscalationStatus.QUEUED,
            Escalation.id != escalation.id,
            or_(
                Escalation.priority_rank < escalation.priority_rank,
                and_(
                    Escalation.priority_rank == escalation.priority_rank,
                    Escalation.created_at < escalation.created_at,
                ),
            ),
        )
    )
    return count or 0
