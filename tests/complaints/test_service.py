"""The case as the bot and the patient reach it: number and working-day deadline, additions, the
patient's reply to the answer; on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import re
from datetime import date, timedelta

import pytest

from crm_backend.complaints import service
from crm_backend.complaints.deadlines import working_days_left
from crm_backend.complaints.models import CaseStatus, ComplaintTimelineEntry
from crm_backend.complaints.service import (
    CaseClosed,
    CaseNotFound,
    InvalidTransition,
    MediaInfo,
    WrongConversation,
    add_to_case,
    case_by_number,
    cases_of_patient,
    record_outcome_reply,
    register_case,
    transition,
)
from crm_backend.runtime import Runtime
from tests.complaints.support import complainant, intake, local, registered


async def test_a_case_registered_before_national_day_is_due_after_the_holiday(runtime: Runtime):
    who = await complainant(runtime)
    # Friday 2026-09-25. Working days after it: 9-28, 9-29, 9-30, then 10-01…10-07 are 国庆/中秋
    # holidays, 10-08 and 10-09, so the fifth is Friday 10-09 (Saturday 10-10 is worked in exchange).
    case = await registered(runtime, who, at=local(date(2026, 9, 25), 16))
    assert re.fullmatch(r"TS-20260925-\d{4}", case.case_number)
    assert case.due_on == date(2026, 10, 9)
    assert case.official_calendar
    # One working day left from the start of Thursday 10-08.
    assert case.nearing_at == local(date(2026, 10, 8), 0)
    assert case.due_at == local(date(2026, 10, 10), 0)
    # What the workspace shows as days left: on 9-30 only 10-08 and 10-09 remain; 0 on the day.
    assert working_days_left(local(date(2026, 9, 30), 10), case.due_on) == 2
    assert working_days_left(local(date(2026, 10, 9), 10), case.due_on) == 0

    # On the last day before it: 10-08, 10-09, Saturday 10-10 (worked), 10-12 and 10-13.
    eve = await registered(runtime, who, at=local(date(2026, 9, 30), 9))
    assert eve.due_on == date(2026, 10, 13)


async def test_praise_has_its_own_numbers_and_numbers_never_repeat(runtime: Runtime):
    who = await complainant(runtime)
    at = local(date(2026, 11, 3), 10)
    cases = await asyncio.gather(*(registered(runtime, who, at=at) for _ in range(6)))
    numbers = [case.case_number for case in cases]
    assert len(set(numbers)) == 6
    praise = await registered(runtime, who, at=at, kind="praise", what="护士小王很耐心")
    assert praise.case_number.startswith("BY-20261103-")


async def test_the_patient_adds_to_an_open_case_and_not_to_an_answered_one(runtime: Runtime):
    who = await complainant(runtime)
    other = await complainant(runtime)
    case = await registered(runtime, who)
    async with runtime.db.sessions() as session:
        await add_to_case(session, case.case_number, who.patient_id, "还有，叫号屏坏了", None)
        await add_to_case(
            session,
            case.case_number.lower(),
            who.patient_id,
            None,
            MediaInfo(media_id="m-1", message_id=None),
        )
        with pytest.raises(CaseNotFound):
            await add_to_case(session, case.case_number, other.patient_id, "不是我的", None)
        await session.commit()
    async with runtime.db.sessions() as session:
        row = await case_by_number(session, case.case_number)
        await transition(session, row, CaseStatus.answered, "office")
        await session.commit()
    async with runtime.db.sessions() as session:
        with pytest.raises(CaseClosed):
            await add_to_case(session, case.case_number, who.patient_id, "再补充", None)
    statuses = await _statuses(runtime, who.patient_id)
    assert statuses[case.case_number] == CaseStatus.answered
    async with runtime.db.sessions() as session:
        added = (
            await session.scalars(
                ComplaintTimelineEntry.__table__.select()
                .where(ComplaintTimelineEntry.complaint_id == case.id)
                .where(ComplaintTimelineEntry.kind == "patient_added")
            )
        ).all()
    assert len(added) == 2


async def test_an_invalid_transition_changes_nothing(runtime: Runtime):
    who = await complainant(runtime)
    case = await registered(runtime, who)
    async with runtime.db.sessions() as session:
        row = await case_by_number(session, case.case_number)
        with pytest.raises(InvalidTransition):
            await transition(session, row, CaseStatus.closed, "office")  # a complaint is answered first
        with pytest.raises(InvalidTransition):
            await transition(session, row, CaseStatus.investigating, "office")  # not assigned yet
        await session.commit()
    async with runtime.db.sessions() as session:
        row = await case_by_number(session, case.case_number)
        assert row.status == CaseStatus.registered
        entries = await _timeline_kinds(session, row.id)
    assert entries == ["registered"]


async def test_not_accepting_within_the_window_reopens_and_later_is_kept(runtime: Runtime):
    who = await complainant(runtime)
    answered_at = local(date(2026, 11, 10), 15)
    reopened = await _answered(runtime, who, answered_at)
    kept = await _answered(runtime, who, answered_at)
    accepted = await _answered(runtime, who, answered_at)
    async with runtime.db.sessions() as session:
        inside = answered_at + timedelta(days=6)
        late = answered_at + timedelta(days=8)
        first = await record_outcome_reply(
            session, reopened, who.patient_id, False, 2, reopen_days=7, now=inside
        )
        second = await record_outcome_reply(session, kept, who.patient_id, False, 1, reopen_days=7, now=late)
        third = await record_outcome_reply(
            session, accepted, who.patient_id, True, 5, reopen_days=7, now=late
        )
        with pytest.raises(service.ReplyNotExpected):
            await record_outcome_reply(session, accepted, who.patient_id, True, 5, reopen_days=7, now=late)
        await session.commit()
    assert (first.outcome, first.status) == ("reopened", CaseStatus.reopened)
    # Too late to reopen, and not left "answered" forever (the closing job skips replied cases).
    assert (second.outcome, second.status) == ("kept", CaseStatus.closed)
    assert (third.outcome, third.status) == ("closed", CaseStatus.closed)
    async with runtime.db.sessions() as session:
        row = await case_by_number(session, reopened)
        assert (row.reopen_count, row.satisfaction, row.accepted) == (1, 2, False)


async def _answered(runtime: Runtime, who, at) -> str:
    case = await registered(runtime, who, at=at - timedelta(days=1))
    async with runtime.db.sessions() as session:
        row = await case_by_number(session, case.case_number)
        await transition(session, row, CaseStatus.answered, "office", now=at)
        await session.commit()
    return case.case_number


async def _statuses(runtime: Runtime, patient_id: int) -> dict[str, CaseStatus]:
    async with runtime.db.sessions() as session:
        return {read.case_number: read.status for read in await cases_of_patient(session, patient_id)}


async def _timeline_kinds(session, complaint_id: int) -> list[str]:
    rows = await session.execute(
        ComplaintTimelineEntry.__table__.select()
        .where(ComplaintTimelineEntry.complaint_id == complaint_id)
        .order_by(ComplaintTimelineEntry.id)
    )
    return [row.kind for row in rows]


async def test_a_case_is_never_registered_into_another_familys_chat(runtime: Runtime):
    """The answer and progress messages go to the case's chat: staff naming patient A with
    patient B's conversation is refused and nothing is stored."""
    a, b = await complainant(runtime), await complainant(runtime)
    async with runtime.db.sessions() as session:
        with pytest.raises(WrongConversation):
            await register_case(session, a.patient_id, b.conversation_id, intake(), "office")
        await session.rollback()
        assert await cases_of_patient(session, a.patient_id) == []


async def test_a_reopened_cases_deadline_counts_from_the_reopening(runtime: Runtime):
    """Marking a reopened case as involving several departments recounts from the reopening, not
    from the first receipt (which would make it overdue at once)."""
    who = await complainant(runtime)
    answered_at = local(date(2026, 11, 10), 15)
    number = await _answered(runtime, who, answered_at)
    reopened_at = answered_at + timedelta(days=3)
    async with runtime.db.sessions() as session:
        await record_outcome_reply(session, number, who.patient_id, False, 2, reopen_days=7, now=reopened_at)
        await session.commit()
    async with runtime.db.sessions() as session:
        row = await case_by_number(session, number)
        assert await service.deadline_start(session, row) == reopened_at
        fresh = await registered(runtime, who, at=answered_at)
        assert await service.deadline_start(session, await case_by_number(session, fresh.case_number)) == (
            answered_at
        )
