"""The complaints job: cases nearing or past their deadline are flagged and escalated to supervisors
exactly once, answered cases nobody replied to are closed when the reply window ends, and a safety
risk whose urgent escalation failed is escalated again.

Exactly once with any number of workers: each flag is set by a guarded UPDATE (`… WHERE
nearing_flagged_at IS NULL`), so of two workers only one changes the row, and only that one writes
the timeline entry and tells the supervisors. The entry commits with the flag; the console event
follows the commit (a worker dying in between leaves the case flagged, on the list, unannounced).
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import datetime, timedelta

from sqlalchemy import select, update

from crm_backend.complaints.models import CaseStatus, Complaint, TimelineKind
from crm_backend.complaints.service import (
    OPEN_STATUSES,
    InvalidTransition,
    add_entry,
    escalate_safety,
    transition,
)
from crm_backend.config import Settings
from crm_backend.realtime.events import ConsoleEvents
from crm_backend.runtime import Runtime
from crm_backend.scheduling import Job

log = logging.getLogger(__name__)

NEARING, OVERDUE = "nearing", "overdue"
#: How long a safety escalation may be owed before the job raises it (register raises it at once).
SAFETY_GRACE = timedelta(minutes=1)
_FLAG_COLUMN = {NEARING: Complaint.nearing_flagged_at, OVERDUE: Complaint.overdue_flagged_at}
_FLAG_TEXT = {NEARING: "距答复期限仅剩1个工作日", OVERDUE: "已超过答复期限"}


async def flag_deadlines(runtime: Runtime, now: datetime | None = None) -> Counter[str]:
    """One pass; how many cases were flagged, closed or escalated (tests and logs)."""
    now = now or runtime.clock()
    done: Counter[str] = Counter()
    open_case = Complaint.status.in_([status.value for status in OPEN_STATUSES])
    async with runtime.db.sessions() as session:
        overdue = (
            await session.scalars(
                select(Complaint.id).where(
                    open_case, Complaint.due_at <= now, Complaint.overdue_flagged_at.is_(None)
                )
            )
        ).all()
        nearing = (
            await session.scalars(
                select(Complaint.id).where(
                    open_case,
                    Complaint.nearing_at <= now,
                    Complaint.due_at > now,
                    Complaint.nearing_flagged_at.is_(None),
                )
            )
        ).all()
    for flag, ids in ((OVERDUE, overdue), (NEARING, nearing)):
        for complaint_id in ids:
            if await _flag(runtime, complaint_id, flag, now):
                done[flag] += 1
    done["closed"] += await close_unanswered_replies(runtime, now)
    done["safety"] += await _safety_owed(runtime, now)
    return +done


async def _flag(runtime: Runtime, complaint_id: int, flag: str, now: datetime) -> bool:
    column = _FLAG_COLUMN[flag]
    async with runtime.db.sessions() as session:
        claimed = await session.execute(
            update(Complaint)
            .where(
                Complaint.id == complaint_id,
                column.is_(None),
                Complaint.status.in_([status.value for status in OPEN_STATUSES]),
            )
            .values({column: now})
            .execution_options(synchronize_session=False)
        )
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            return False  # another worker flagged it, or it was answered meanwhile
        complaint = await session.get(Complaint, complaint_id)
        assert complaint is not None
        add_entry(
            session,
            complaint,
            TimelineKind.flag,
            "system",
            at=now,
            text=f"{_FLAG_TEXT[flag]}（{complaint.due_on.isoformat()}），已上报主管",
            data={"flag": flag, "due_on": complaint.due_on.isoformat()},
        )
        event = {
            "type": "complaint.flagged",
            # No team: the console sends it to supervisors and admins only (realtime/ws.py).
            "team_id": None,
            "flag": flag,
            "case_number": complaint.case_number,
            "status": complaint.status,
            "due_on": complaint.due_on.isoformat(),
            "department_id": complaint.department_id,
        }
        await session.commit()
    log.warning("case %s %s its deadline %s", event["case_number"], flag, event["due_on"])
    try:
        await ConsoleEvents(runtime.redis, runtime.settings).publish(event)
    except Exception:
        log.exception("case %s flagged %s; supervisors not told live", event["case_number"], flag)
    return True


async def close_unanswered_replies(runtime: Runtime, now: datetime) -> int:
    """Answered cases whose reply window ended with no reply: closed (the patient did not object)."""
    before = now - timedelta(days=runtime.settings.complaint_reopen_days)
    async with runtime.db.sessions() as session:
        ids = (
            await session.scalars(
                select(Complaint.id).where(
                    Complaint.status == CaseStatus.answered,
                    Complaint.replied_at.is_(None),
                    Complaint.answered_at <= before,
                )
            )
        ).all()
    closed = 0
    for complaint_id in ids:
        async with runtime.db.sessions() as session:
            complaint = await session.get(Complaint, complaint_id)
            assert complaint is not None
            try:
                await transition(
                    session,
                    complaint,
                    CaseStatus.closed,
                    "system",
                    text="答复后患者未提出异议，自动办结",
                    now=now,
                )
            except InvalidTransition:
                continue  # the patient replied, or another worker closed it, meanwhile
            await session.commit()
            closed += 1
    return closed


async def _safety_owed(runtime: Runtime, now: datetime) -> int:
    async with runtime.db.sessions() as session:
        ids = (
            await session.scalars(
                select(Complaint.id).where(
                    Complaint.safety_risk.is_(True),
                    Complaint.safety_escalated_at.is_(None),
                    Complaint.registered_at <= now - SAFETY_GRACE,
                )
            )
        ).all()
    raised = 0
    for complaint_id in ids:
        try:
            raised += await escalate_safety(runtime, complaint_id)
        except Exception:
            log.exception("case %s: the safety escalation failed again", complaint_id)
    return raised


async def _run(runtime: Runtime) -> None:
    await flag_deadlines(runtime)


def _every(settings: Settings) -> float:
    return settings.complaint_interval_seconds


JOBS = [Job("complaint-deadlines", _run, _every)]
