"""The booking guarantee on PostgreSQL: concurrent bookers never oversell a session or double-book."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from crm_backend.appointments.models import Appointment, Schedule
from crm_backend.appointments.service import AlreadyBooked, BookingError, FullyBooked, book
from crm_backend.runtime import Runtime
from tests.appointments.conftest import make_patients, make_schedule

FAR = date.today() + timedelta(days=30)


async def _book(runtime: Runtime, patient_id: int, identity_id: int, schedule_id: int) -> object:
    """One booking in its own session (its own connection from the pool), as one web request would."""
    async with runtime.db.sessions() as session:
        try:
            appointment = await book(session, patient_id, schedule_id, identity_id)
            await session.commit()
            return appointment.id
        except BookingError as exc:
            await session.rollback()
            return exc


async def _state(runtime: Runtime, schedule_id: int) -> tuple[int, int]:
    async with runtime.db.sessions() as session:
        booked = await session.scalar(sa.select(Schedule.booked_count).where(Schedule.id == schedule_id))
        count = await session.scalar(
            sa.select(sa.func.count())
            .select_from(Appointment)
            .where(Appointment.schedule_id == schedule_id, Appointment.status == "booked")
        )
        return int(booked or 0), int(count or 0)


@pytest.mark.parametrize("attempt", range(3))
async def test_fifty_patients_race_for_ten_places(runtime: Runtime, attempt: int):
    schedule = await make_schedule(runtime, FAR, capacity=10)
    patients = await make_patients(runtime, 50)
    results = await asyncio.gather(*(_book(runtime, p, i, schedule.id) for p, i in patients))
    booked = [r for r in results if isinstance(r, int)]
    refused = [r for r in results if isinstance(r, FullyBooked)]
    assert len(booked) == 10 and len(refused) == 40, results
    assert await _state(runtime, schedule.id) == (10, 10)
    assert "约满" in refused[0].message


@pytest.mark.parametrize("attempt", range(3))
async def test_same_patient_booking_twice_at_once_gets_one(runtime: Runtime, attempt: int):
    schedule = await make_schedule(runtime, FAR, capacity=10)
    [(patient_id, identity_id)] = await make_patients(runtime, 1)
    results = await asyncio.gather(*(_book(runtime, patient_id, identity_id, schedule.id) for _ in range(5)))
    assert len([r for r in results if isinstance(r, int)]) == 1, results
    assert all(isinstance(r, AlreadyBooked) for r in results if not isinstance(r, int))
    # The refused attempts gave their place back: only one is taken.
    assert await _state(runtime, schedule.id) == (1, 1)


async def test_database_refuses_overbooking_whatever_the_code(runtime: Runtime):
    schedule = await make_schedule(runtime, FAR, capacity=2)
    async with runtime.db.sessions() as session:
        with pytest.raises(sa.exc.IntegrityError):
            await session.execute(
                sa.update(Schedule).where(Schedule.id == schedule.id).values(booked_count=3)
            )
