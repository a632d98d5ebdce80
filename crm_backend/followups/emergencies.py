"""A check-in that ends on an emergency the route screened: the patient wrote something like
"突然喘不上气" while a check-in was open.

The route's red-flag screen answers such a message before Rasa hears it (120 advice, an urgent
escalation to nursing) and the worker closes the open form, so the check-in's questions stop. This
listener records that on the open check-in of that conversation's WeChat identity (of several, the
one answered or started last): answered in chat
with the worst flag `emergency` and the reason, so the check-in is not left half-open, it counts as
a response, and it stands on the team's flagged list beside the escalation nurses already have.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from crm_backend.conversations.events import EscalationRequested
from crm_backend.conversations.models import Conversation
from crm_backend.followups.models import CheckinChannel, CheckinStatus, FollowupAnswer, FollowupCheckin
from crm_backend.followups.plans import Flag
from crm_backend.runtime import Runtime

log = logging.getLogger(__name__)

#: The reason conversations/processing.py gives an emergency the route screened.
ROUTE_EMERGENCY = "emergency"
REASON = "随访对话中患者描述了急症（红旗筛查），已提示拨打 120 并紧急转护士"


async def end_checkins_on_emergency(runtime: Runtime, event: EscalationRequested) -> list[int]:
    """Close the started check-ins of the conversation's identity on an emergency; their ids."""
    if event.reason != ROUTE_EMERGENCY:
        return []
    now = runtime.clock()
    async with runtime.db.sessions() as session:
        conversation = await session.get(Conversation, event.conversation_id)
        if conversation is None:
            return []
        started = list(
            await session.scalars(
                select(FollowupCheckin).where(
                    FollowupCheckin.identity_id == conversation.identity_id,
                    FollowupCheckin.status == CheckinStatus.started,
                )
            )
        )
        closed: list[int] = []
        for row in await _under_way(session, started):
            # Only if still started: the page (or a nurse's call) may have completed it since it was
            # read, and its outcome stands.
            done = await session.execute(
                update(FollowupCheckin)
                .where(FollowupCheckin.id == row.id, FollowupCheckin.status == CheckinStatus.started)
                .values(
                    status=CheckinStatus.answered,
                    answered_at=now,
                    channel=CheckinChannel.chat,
                    worst_flag=Flag.emergency.value,
                    postponed_until=None,
                    reason=REASON,
                )
                .execution_options(synchronize_session=False)
            )
            if done.rowcount == 1:  # type: ignore[attr-defined]
                closed.append(row.id)
        await session.commit()
    for checkin_id in closed:
        log.warning("check-in %s ended on an emergency in conversation %s", checkin_id, event.conversation_id)
    return closed


async def _under_way(session: AsyncSession, started: list[FollowupCheckin]) -> list[FollowupCheckin]:
    """The one check-in the chat was about: of several started for one account (a daughter who
    manages both parents), the one answered or started last. The others were not what the
    emergency was about; closing them would record an emergency for the wrong patient and stop
    asking them (the emergency itself is escalated either way)."""
    if len(started) <= 1:
        return started
    last_answer = dict(
        (
            await session.execute(
                select(FollowupAnswer.checkin_id, func.max(FollowupAnswer.created_at))
                .where(FollowupAnswer.checkin_id.in_([row.id for row in started]))
                .group_by(FollowupAnswer.checkin_id)
            )
        ).all()
    )

    def activity(row: FollowupCheckin) -> tuple[datetime, int]:
        moments = [m for m in (row.started_at, last_answer.get(row.id)) if m is not None]
        latest = max((_aware(m) for m in moments), default=datetime.min.replace(tzinfo=UTC))
        return latest, row.id

    return [max(started, key=activity)]


def _aware(moment: datetime) -> datetime:
    """SQLite hands back naive UTC datetimes from an aggregate."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
