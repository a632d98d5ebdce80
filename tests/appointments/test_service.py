"""Booking rules: closed and full sessions, cancellation cut-off, rescheduling, alternatives."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from crm_backend.appointments.models import Appointment, Schedule
from crm_backend.appointments.service import (
    HOSPITAL_TZ,
    AlreadyBooked,
    CancelTooLate,
    FullyBooked,
    NotCancellable,
    ScheduleClosed,
    ScheduleNotFound,
    available_schedules,
    book,
    cancel,
    find_department,
    nearest_alternatives,
    reschedule,
    session_start,
)
from crm_backend.database.core import Database
from crm_backend.patients.models import Patient
from crm_backend.runtime import Runtime
from tests.appointments.conftest import make_department, make_patients, make_schedule
from tests.support.postgres import alembic

DAY = date(2027, 3, 10)  # a Wednesday
CUTOFF = timedelta(hours=2)


async def _count(runtime: Runtime, schedule_id: int) -> int:
    async with runtime.db.sessions() as session:
        return int(
            await session.scalar(sa.select(Schedule.booked_count).where(Schedule.id == schedule_id)) or 0
        )


def test_session_start_is_hospital_time():
    assert session_start(DAY, "am") == datetime(2027, 3, 10, 0, 0, tzinfo=UTC)
    assert session_start(DAY, "pm") == datetime(2027, 3, 10, 5, 30, tzinfo=UTC)


async def test_refusals_are_clear_and_leave_the_transaction_usable(runtime: Runtime):
    full = await make_schedule(runtime, DAY, capacity=1)
    closed = await make_schedule(runtime, DAY, status="closed")
    [(p1, i1), (p2, i2)] = await make_patients(runtime, 2)
    async with runtime.db.sessions() as session:
        first = await book(session, p1, full.id, i1)
        with pytest.raises(AlreadyBooked):
            await book(session, p1, full.id, i1)
        with pytest.raises(FullyBooked) as refused:
            await book(session, p2, full.id, i2)
        assert refused.value.message.startswith("抱歉")
        with pytest.raises(ScheduleClosed):
            await book(session, p2, closed.id, i2)
        with pytest.raises(ScheduleNotFound):
            await book(session, p2, 10**9, i2)
        await session.commit()  # the booking made before the refusals is kept
    assert await _count(runtime, full.id) == 1
    async with runtime.db.sessions() as session:
        kept = await session.get(Appointment, first.id)
        assert kept is not None and kept.status == "booked" and kept.booked_by_identity_id == i1


async def test_cancel_respects_the_cut_off_and_frees_the_place(runtime: Runtime):
    schedule = await make_schedule(runtime, DAY, "pm", capacity=1)
    [(patient, identity), (other, other_identity)] = await make_patients(runtime, 2)
    start = session_start(DAY, "pm")
    async with runtime.db.sessions() as session:
        appointment = await book(session, patient, schedule.id, identity)
        await session.commit()
        with pytest.raises(CancelTooLate) as late:
            await cancel(session, appointment, start - timedelta(hours=1, minutes=59), CUTOFF)
        assert "2小时" in late.value.message
        await cancel(session, appointment, start - timedelta(hours=2), CUTOFF)
        await session.commit()
        assert appointment.status == "cancelled" and appointment.cancelled_at is not None
        with pytest.raises(NotCancellable):
            await cancel(session, appointment, start - timedelta(days=1), CUTOFF)
    assert await _count(runtime, schedule.id) == 0
    async with runtime.db.sessions() as session:  # the freed place is bookable, also by the same patient
        await book(session, other, schedule.id, other_identity)
        await session.commit()
    assert await _count(runtime, schedule.id) == 1


async def test_reschedule_moves_the_booking_or_changes_nothing(runtime: Runtime):
    department = await make_department(runtime)
    old = await make_schedule(runtime, DAY, "am", department=department, doctor_name="甲")
    new = await make_schedule(runtime, DAY + timedelta(days=1), "am", department=department, doctor_name="甲")
    full = await make_schedule(runtime, DAY + timedelta(days=2), "am", capacity=0, department=department)
    [(patient, identity)] = await make_patients(runtime, 1)
    early = session_start(DAY, "am") - timedelta(days=1)
    async with runtime.db.sessions() as session:
        appointment = await book(session, patient, old.id, identity)
        await session.commit()
        with pytest.raises(FullyBooked):
            await reschedule(session, appointment, full.id, identity, early, CUTOFF)
        with pytest.raises(CancelTooLate):  # too late to cancel the old one: the new booking is undone
            await reschedule(session, appointment, new.id, identity, session_start(DAY, "am"), CUTOFF)
        await session.commit()
        assert (await _count(runtime, old.id), await _count(runtime, new.id)) == (1, 0)
        moved = await reschedule(session, appointment, new.id, identity, early, CUTOFF)
        await session.commit()
        assert moved.schedule_id == new.id and appointment.status == "cancelled"
    assert (await _count(runtime, old.id), await _count(runtime, new.id)) == (0, 1)


async def test_available_sessions_and_nearest_alternatives(runtime: Runtime):
    department = await make_department(runtime, aliases=["心内科", "心脏科"], name="心血管内科九")
    wanted = DAY + timedelta(days=20)
    await make_schedule(runtime, wanted, "am", capacity=0, department=department, doctor_name="满")
    before = await make_schedule(runtime, wanted - timedelta(days=2), "pm", department=department)
    after = await make_schedule(runtime, wanted + timedelta(days=1), "am", department=department)
    await make_schedule(runtime, wanted + timedelta(days=1), "pm", department=department, status="closed")
    await make_schedule(runtime, wanted - timedelta(days=1), "am")  # another department
    async with runtime.db.sessions() as session:
        found = await find_department(session, " 心脏科 ")
        assert found is not None and found.id == department.id
        assert await available_schedules(session, department, wanted, wanted) == []
        now = datetime(2027, 3, 1, tzinfo=HOSPITAL_TZ)
        alternatives = await nearest_alternatives(session, department, wanted, now)
        assert [a.schedule_id for a in alternatives] == [after.id, before.id]
        assert "余10个号" in alternatives[0].label
        # Sessions that have started (or lie in the past) are never offered.
        late = session_start(wanted - timedelta(days=2), "pm")
        assert [a.schedule_id for a in await nearest_alternatives(session, department, wanted, late)] == [
            after.id
        ]


async def test_booking_on_sqlite(tmp_path: Path):
    """The embedded backend keeps the same rules (savepoints, CHECK and partial unique index)."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'carebridge.db'}"
    alembic(url, "upgrade", "head")
    db = Database(url)
    try:
        async with db.sessions() as session:
            patient = Patient(display_name="甲")
            session.add(patient)
            await session.execute(
                sa.text(
                    "INSERT INTO departments (id, code, name, patient_name, aliases, created_at)"
                    " VALUES (1, 'X', 'x', 'x', '[]', '2026-01-01')"
                )
            )
            await session.execute(
                sa.text(
                    "INSERT INTO doctors (id, department_id, name, title, active, created_at)"
                    " VALUES (1, 1, 'd', '主治医师', 1, '2026-01-01')"
                )
            )
            schedule = Schedule(doctor_id=1, date=DAY, half_day="am", capacity=1)
            session.add(schedule)
            await session.commit()
            await book(session, patient.id, schedule.id, None)
            with pytest.raises(AlreadyBooked):
                await book(session, patient.id, schedule.id, None)
            other = Patient(display_name="乙")
            session.add(other)
            await session.flush()
            with pytest.raises(FullyBooked):
                await book(session, other.id, schedule.id, None)
            await session.commit()
            assert await session.scalar(sa.select(Schedule.booked_count)) == 1
            with pytest.raises(sa.exc.IntegrityError):
                await session.execute(sa.update(Schedule).values(booked_count=2))
    finally:
        await db.dispose()
