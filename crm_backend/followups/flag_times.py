"""When a check-in reached its worst flag: one rule for the flagged list's "reply by" (worklists.py)
and the report's red flag → first contact (report.py).

An answered check-in counts from its answer. One answered only in part (a red answer, then
silence; it may be open still or missed) counts from the first answer that raised its worst flag:
that answer was escalated when it was given, so a nurse's clock starts there.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_backend.followups.models import FollowupAnswer
from crm_backend.followups.plans import Flag

#: Worst flags a nurse acts on.
FLAGGED = (Flag.amber.value, Flag.red.value, Flag.emergency.value)


class Flagged(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def answered_at(self) -> datetime | None: ...
    @property
    def worst_flag(self) -> str | None: ...


async def flagged_at(session: AsyncSession, checkins: Sequence[Flagged]) -> dict[int, datetime]:
    """The moment each flagged check-in reached its worst flag (check-ins without one are left out)."""
    partial = [c for c in checkins if c.answered_at is None and c.worst_flag in FLAGGED]
    found = {c.id: c.answered_at for c in checkins if c.answered_at is not None and c.worst_flag in FLAGGED}
    if partial:
        rows = await session.execute(
            select(FollowupAnswer.checkin_id, FollowupAnswer.flag, func.min(FollowupAnswer.created_at))
            .where(FollowupAnswer.checkin_id.in_([c.id for c in partial]))
            .group_by(FollowupAnswer.checkin_id, FollowupAnswer.flag)
        )
        worst = {c.id: c.worst_flag for c in partial}
        for checkin_id, flag, first in rows.all():
            if flag == worst[checkin_id]:
                found[checkin_id] = first
    return {checkin_id: at for checkin_id, at in found.items() if at is not None}
