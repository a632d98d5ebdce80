"""The complaints job: cases nearing or past their deadline are flagged and reported to supervisors
once, with two workers running it at the same moment; answered cases nobody replied to close when
the reply window ends; a safety risk is escalated urgently to the complaints office."""

from __future__ import annotations

import asyncio
import json
from datetime import date, timedelta

import redis.asyncio as aioredis
import sqlalchemy as sa

from crm_backend.complaints.models import CaseStatus, ComplaintTimelineEntry
from crm_backend.complaints.scheduled import flag_deadlines
from crm_backend.complaints.service import ComplaintIntake, case_by_number, register, transition
from crm_backend.domains import subscribe_listeners
from crm_backend.escalations.models import Escalation
from crm_backend.runtime import Runtime
from crm_backend.staff.models import Team
from tests.complaints.support import complainant, intake, local, registered


async def test_two_workers_flag_each_case_once(runtime: Runtime):
    who = await complainant(runtime)
    # Registered Monday 2026-11-02: due Monday 11-09, one working day left from Friday 11-06.
    cases = [await registered(runtime, who, at=local(date(2026, 11, 2), 10)) for _ in range(4)]
    assert {case.due_on for case in cases} == {date(2026, 11, 9)}
    second = Runtime.create(runtime.settings)
    events = runtime.settings.key("console", "events")
    seen_before = await runtime.redis.xlen(events)
    try:
        thursday = local(date(2026, 11, 5), 18)
        await asyncio.gather(flag_deadlines(runtime, thursday), flag_deadlines(second, thursday))
        assert [await _flags(runtime, case.id) for case in cases] == [[]] * 4
        friday = local(date(2026, 11, 6), 9)
        await asyncio.gather(flag_deadlines(runtime, friday), flag_deadlines(second, friday))
        await asyncio.gather(flag_deadlines(runtime, friday), flag_deadlines(second, friday))
        tuesday = local(date(2026, 11, 10), 8)
        await asyncio.gather(flag_deadlines(runtime, tuesday), flag_deadlines(second, tuesday))
        await asyncio.gather(flag_deadlines(runtime, tuesday), flag_deadlines(second, tuesday))
    finally:
        await second.close()
    for case in cases:
        assert await _flags(runtime, case.id) == ["nearing", "overdue"]
    numbers = {case.case_number for case in cases}
    told = await _flag_events(runtime, seen_before)
    assert sorted((e["case_number"], e["flag"]) for e in told if e["case_number"] in numbers) == sorted(
        (number, flag) for number in numbers for flag in ("nearing", "overdue")
    )
    assert all(e["team_id"] is None for e in told)  # supervisors and admins only


async def test_an_answered_case_is_not_flagged_and_closes_after_the_reply_window(runtime: Runtime):
    who = await complainant(runtime)
    case = await registered(runtime, who, at=local(date(2026, 11, 16), 10))
    answered_at = local(date(2026, 11, 17), 10)
    async with runtime.db.sessions() as session:
        row = await case_by_number(session, case.case_number)
        await transition(session, row, CaseStatus.answered, "office", now=answered_at)
        await session.commit()
    await flag_deadlines(runtime, answered_at + timedelta(days=6))
    async with runtime.db.sessions() as session:
        assert (await case_by_number(session, case.case_number)).status == CaseStatus.answered
    await flag_deadlines(runtime, answered_at + timedelta(days=7, minutes=1))
    async with runtime.db.sessions() as session:
        row = await case_by_number(session, case.case_number)
        assert row.status == CaseStatus.closed and row.accepted is None
    assert await _flags(runtime, case.id) == []


async def test_a_safety_risk_is_escalated_urgently_once(runtime: Runtime):
    worker = Runtime.create(runtime.settings)
    subscribe_listeners(worker)
    try:
        who = await complainant(runtime)
        complaint = await register(
            worker,
            who.patient_id,
            who.conversation_id,
            ComplaintIntake.model_validate(
                intake(what="护士给我父亲发错了药", safety_risk=True).model_dump()
            ),
            "bot",
        )
        await flag_deadlines(worker)  # nothing owed any more: not escalated twice
    finally:
        await worker.close()
    async with runtime.db.sessions() as session:
        escalations = (
            await session.execute(
                sa.select(Escalation, Team.name)
                .join(Team, Team.id == Escalation.team_id)
                .where(Escalation.conversation_id == who.conversation_id)
            )
        ).all()
        row = await case_by_number(session, complaint.case_number)
    assert [(e.reason, e.priority, team) for e, team in escalations] == [
        ("complaint_safety", "urgent", "投诉办公室")
    ]
    assert row.safety_escalated_at is not None and row.category == "safety"


async def _flags(runtime: Runtime, complaint_id: int) -> list[str]:
    async with runtime.db.sessions() as session:
        rows = await session.scalars(
            sa.select(ComplaintTimelineEntry)
            .where(ComplaintTimelineEntry.complaint_id == complaint_id, ComplaintTimelineEntry.kind == "flag")
            .order_by(ComplaintTimelineEntry.id)
        )
        return [row.data["flag"] for row in rows]


async def _flag_events(runtime: Runtime, after: int) -> list[dict]:
    client = aioredis.Redis.from_url(runtime.settings.redis_url, decode_responses=True)
    try:
        entries = await client.xrange(runtime.settings.key("console", "events"))
    finally:
        await client.aclose()
    events = [json.loads(fields["data"]) for _, fields in entries[after:]]
    return [e for e in events if e.get("type") == "complaint.flagged"]
