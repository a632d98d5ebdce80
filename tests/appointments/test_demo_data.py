"""Demo clinics: a general hospital of at least 25 bookable departments, loaded into an empty
database only, findable by the names patients use."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa

from crm_backend.appointments.demo_data import DEPARTMENTS, load_demo_data_if_empty
from crm_backend.appointments.models import Department, Doctor, Schedule
from crm_backend.appointments.service import find_department, hospital_today
from crm_backend.database.core import Database, utcnow
from tests.support.postgres import alembic


async def test_demo_data_loads_once(tmp_path: Path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'carebridge.db'}"
    alembic(url, "upgrade", "head")
    db = Database(url)
    try:
        assert await load_demo_data_if_empty(db) is True
        assert await load_demo_data_if_empty(db) is False
        async with db.sessions() as session:
            departments = (await session.scalars(sa.select(Department))).all()
            assert len(departments) == len(DEPARTMENTS) >= 25
            # Every department can be booked: an open session with places within the coming week.
            week = hospital_today(utcnow()) + timedelta(days=6)
            bookable = set(
                (
                    await session.scalars(
                        sa.select(Department.code)
                        .join(Doctor, Doctor.department_id == Department.id)
                        .join(Schedule, Schedule.doctor_id == Doctor.id)
                        .where(Schedule.status == "open", Schedule.capacity > Schedule.booked_count)
                        .where(Schedule.date <= week)
                    )
                ).all()
            )
            assert bookable == {d.code for d in departments}
            per_department = dict(
                (
                    await session.execute(
                        sa.select(Doctor.department_id, sa.func.count()).group_by(Doctor.department_id)
                    )
                ).all()
            )
            assert all(2 <= n <= 3 for n in per_department.values())
            today = hospital_today(utcnow())
            first, last = (
                await session.execute(sa.select(sa.func.min(Schedule.date), sa.func.max(Schedule.date)))
            ).one()
            assert first >= today and last <= today + timedelta(days=13)
            for words, code in (
                ("心内科", "CARD"),
                ("牙科", "STOM"),
                ("耳鼻喉", "ENT"),
                ("内科", "GIM"),
                ("呼吸科", "RESP"),
                ("中医", "TCM"),
                ("妇科", "GYN"),
                ("产科", "OBS"),
                ("心理科", "PSY"),
            ):
                found = await find_department(session, words)
                assert found is not None and found.code == code, words
    finally:
        await db.dispose()
