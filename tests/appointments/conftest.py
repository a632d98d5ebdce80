"""Booking fixtures: our own PostgreSQL database and Redis db 10, reset at session start."""

from __future__ import annotations

import itertools
import os
from collections.abc import AsyncIterator
from datetime import date

import httpx
import pytest
import redis
from fastapi import FastAPI

from crm_backend.appointments.models import Department, Doctor, Schedule
from crm_backend.appointments.views import router as appointments_router
from crm_backend.patients.models import Patient, WeChatIdentity
from crm_backend.runtime import Runtime
from crm_backend.staff.audit_views import router as audit_router
from crm_backend.staff.views import router as staff_router
from tests.support.api import ADMIN_PASSWORD, ADMIN_USERNAME, api_settings, build_api_app, login, new_client
from tests.support.postgres import alembic, drop_postgres, recreate_postgres

REDIS_URL = (
    os.environ.get("TEST_REDIS_BASE", "redis://127.0.0.1:6379")
    + "/"
    + os.environ.get("TEST_APPOINTMENTS_REDIS_DB", "10")
)
#: Overridable so two copies of this suite can run side by side.
DB_NAME = os.environ.get("TEST_APPOINTMENTS_DB", "carebridge_appointments_test")

_serial = itertools.count(1)


@pytest.fixture(scope="session")
async def database_url() -> AsyncIterator[str]:
    url = await recreate_postgres(DB_NAME)
    alembic(url, "upgrade", "head")
    yield url
    await drop_postgres(DB_NAME)


@pytest.fixture(scope="session")
async def runtime(database_url: str) -> AsyncIterator[Runtime]:
    redis.Redis.from_url(REDIS_URL).flushdb()
    runtime = Runtime.create(api_settings(database_url, REDIS_URL))
    yield runtime
    await runtime.close()


@pytest.fixture(scope="session")
async def app(runtime: Runtime) -> FastAPI:
    return await build_api_app(runtime, staff_router, audit_router, appointments_router)


@pytest.fixture
async def admin_client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with new_client(app) as c:
        await login(c, ADMIN_USERNAME, ADMIN_PASSWORD)
        yield c


async def make_patients(runtime: Runtime, count: int) -> list[tuple[int, int]]:
    """`count` patients, each with a WeChat identity: (patient_id, identity_id) pairs."""
    result = []
    async with runtime.db.sessions() as session:
        for _ in range(count):
            patient = Patient(display_name=f"患者{next(_serial)}")
            session.add(patient)
            await session.flush()
            identity = WeChatIdentity(
                app_id="wx_test", openid=f"openid-appt-{next(_serial):06d}", patient_id=patient.id
            )
            session.add(identity)
            await session.flush()
            result.append((patient.id, identity.id))
        await session.commit()
    return result


async def make_department(runtime: Runtime, **fields: object) -> Department:
    n = next(_serial)
    values: dict[str, object] = {
        "code": f"D{n}",
        "name": f"测试科{n}",
        "patient_name": f"测试科{n}",
        "aliases": [],
        **fields,
    }
    async with runtime.db.sessions() as session:
        department = Department(**values)
        session.add(department)
        await session.commit()
        return department


async def make_schedule(
    runtime: Runtime,
    day: date,
    half_day: str = "am",
    capacity: int = 10,
    department: Department | None = None,
    doctor_name: str | None = None,
    status: str = "open",
) -> Schedule:
    """A session of a (new or named) doctor in `department` (a new one when not given)."""
    department = department or await make_department(runtime)
    name = doctor_name or f"医生{next(_serial)}"
    async with runtime.db.sessions() as session:
        doctor = (
            await session.execute(
                Doctor.__table__.select().where(Doctor.department_id == department.id, Doctor.name == name)
            )
        ).first()
        if doctor is None:
            new = Doctor(department_id=department.id, name=name, title="主治医师")
            session.add(new)
            await session.flush()
            doctor_id = new.id
        else:
            doctor_id = doctor.id
        schedule = Schedule(
            doctor_id=doctor_id, date=day, half_day=half_day, capacity=capacity, status=status
        )
        session.add(schedule)
        await session.commit()
        return schedule
