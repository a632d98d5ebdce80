"""Where schedules come from: a `ScheduleSource` the dialogues read, and the CSV import for our own store.

Dialogues and console code ask a `ScheduleSource` for departments, doctors and sessions, never the tables
directly, so a hospital's HIS can replace the built-in database store with an adapter later. Booking
itself stays in `service.py` against the database store.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import date
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from crm_backend.appointments.models import Department, Doctor, HalfDay, Schedule, ScheduleStatus


@dataclass(frozen=True, slots=True)
class DepartmentInfo:
    code: str
    name: str
    patient_name: str
    aliases: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class DoctorInfo:
    id: int
    department_code: str
    name: str
    title: str
    specialty: str | None


@dataclass(frozen=True, slots=True)
class SessionInfo:
    schedule_id: int
    department_code: str
    doctor_id: int
    doctor_name: str
    title: str
    date: date
    half_day: HalfDay
    capacity: int
    booked_count: int
    status: ScheduleStatus

    @property
    def available(self) -> int:
        return max(self.capacity - self.booked_count, 0) if self.status == ScheduleStatus.OPEN else 0


class ScheduleSource(Protocol):
    """Read-only view of a hospital's clinics; implemented by our database or, later, a HIS adapter."""

    async def departments(self) -> list[DepartmentInfo]: ...

    async def doctors(self, department_code: str | None = None) -> list[DoctorInfo]: ...

    async def sessions(
        self,
        date_from: date,
        date_to: date,
        department_code: str | None = None,
        doctor_id: int | None = None,
    ) -> list[SessionInfo]: ...


class DatabaseScheduleSource:
    """The default source: schedules entered in the console or imported from CSV into our tables."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def departments(self) -> list[DepartmentInfo]:
        rows = (await self.session.scalars(select(Department).order_by(Department.code))).all()
        return [DepartmentInfo(d.code, d.name, d.patient_name, tuple(d.aliases or ())) for d in rows]

    async def doctors(self, department_code: str | None = None) -> list[DoctorInfo]:
        query = (
            select(Doctor, Department.code)
            .join(Department, Doctor.department_id == Department.id)
            .where(Doctor.active.is_(True))
            .order_by(Department.code, Doctor.id)
        )
        if department_code is not None:
            query = query.where(Department.code == department_code)
        rows = (await self.session.execute(query)).all()
        return [DoctorInfo(d.id, code, d.name, d.title, d.specialty) for d, code in rows]

    async def sessions(
        self,
        date_from: date,
        date_to: date,
        department_code: str | None = None,
        doctor_id: int | None = None,
    ) -> list[SessionInfo]:
        query = (
            select(Schedule)
            .join(Doctor, Schedule.doctor_id == Doctor.id)
            .join(Department, Doctor.department_id == Department.id)
            .options(joinedload(Schedule.doctor).joinedload(Doctor.department))
            .where(Schedule.date >= date_from, Schedule.date <= date_to)
            .order_by(Schedule.date, Schedule.half_day, Department.code, Doctor.id)
        )
        if department_code is not None:
            query = query.where(Department.code == department_code)
        if doctor_id is not None:
            query = query.where(Schedule.doctor_id == doctor_id)
        rows = (await self.session.scalars(query)).unique().all()
        return [
            SessionInfo(
                schedule_id=s.id,
                department_code=s.doctor.department.code,
                doctor_id=s.doctor_id,
                doctor_name=s.doctor.name,
                title=s.doctor.title,
                date=s.date,
                half_day=HalfDay(s.half_day),
                capacity=s.capacity,
                booked_count=s.booked_count,
                status=ScheduleStatus(s.status),
            )
            for s in rows
        ]


# -- CSV import -------------------------------------------------------------------------------------

CSV_COLUMNS = ("department_code", "doctor_name", "title", "date", "half_day", "capacity")
MAX_IMPORT_ROWS = 5000
MAX_CAPACITY = 500
_HALF_DAYS = {"am": HalfDay.AM, "pm": HalfDay.PM, "上午": HalfDay.AM, "下午": HalfDay.PM}


@dataclass(frozen=True, slots=True)
class ScheduleRow:
    line: int
    department_code: str
    doctor_name: str
    title: str
    date: date
    half_day: HalfDay
    capacity: int


@dataclass
class ImportResult:
    rows: int = 0
    created: int = 0
    updated: int = 0
    doctors_created: int = 0
    #: One entry per refused row: {"line": n, "errors": [...]}; non-empty means nothing was imported.
    errors: list[dict[str, object]] = field(default_factory=list)


class ImportRejected(Exception):
    """The file had errors; nothing was written."""

    def __init__(self, errors: list[dict[str, object]]) -> None:
        super().__init__(f"{len(errors)} rows rejected")
        self.errors = errors


def parse_schedule_csv(text: str) -> tuple[list[ScheduleRow], list[dict[str, object]]]:
    """Rows that look right, and per-line errors for those that do not (line 1 is the header)."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))  # Excel writes a BOM
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in CSV_COLUMNS if c not in header]
    if missing:
        return [], [{"line": 1, "errors": [f"missing columns: {', '.join(missing)}"]}]
    reader.fieldnames = header
    rows: list[ScheduleRow] = []
    errors: list[dict[str, object]] = []
    for record in reader:
        line = reader.line_num
        if len(rows) + len(errors) >= MAX_IMPORT_ROWS:
            errors.append({"line": line, "errors": [f"more than {MAX_IMPORT_ROWS} rows"]})
            break
        values = {k: (v or "").strip() for k, v in record.items() if k is not None}
        if not any(values.values()):
            continue  # blank line
        problems: list[str] = []
        for column in ("department_code", "doctor_name", "title"):
            if not values.get(column):
                problems.append(f"{column} is empty")
            elif len(values[column]) > 32:
                problems.append(f"{column} is longer than 32 characters")
        day: date | None = None
        try:
            day = date.fromisoformat(values.get("date", ""))
        except ValueError:
            problems.append(f"date {values.get('date')!r} is not YYYY-MM-DD")
        half_day = _HALF_DAYS.get(values.get("half_day", "").lower())
        if half_day is None:
            problems.append(f"half_day {values.get('half_day')!r} is not am or pm")
        capacity = 0
        try:
            capacity = int(values.get("capacity", ""))
            if not 0 <= capacity <= MAX_CAPACITY:
                problems.append(f"capacity must be between 0 and {MAX_CAPACITY}")
        except ValueError:
            problems.append(f"capacity {values.get('capacity')!r} is not a whole number")
        if problems or day is None or half_day is None:
            errors.append({"line": line, "errors": problems})
            continue
        rows.append(
            ScheduleRow(
                line=line,
                department_code=values["department_code"],
                doctor_name=values["doctor_name"],
                title=values["title"],
                date=day,
                half_day=half_day,
                capacity=capacity,
            )
        )
    return rows, errors


async def import_schedules(session: AsyncSession, text: str) -> ImportResult:
    """Validate every row, then write all of them or none (raises `ImportRejected`); the caller commits.

    A row for an existing doctor/date/half-day updates its capacity (never below what is already
    booked); unknown doctors are created in the row's department; departments must already exist.
    """
    rows, errors = parse_schedule_csv(text)
    departments = {d.code: d for d in (await session.scalars(select(Department))).all()}
    seen: dict[tuple[str, str, date, HalfDay], int] = {}
    for row in rows:
        problems: list[str] = []
        if row.department_code not in departments:
            problems.append(f"unknown department_code {row.department_code!r}")
        key = (row.department_code, row.doctor_name, row.date, row.half_day)
        if key in seen:
            problems.append(f"same doctor, date and half_day as line {seen[key]}")
        seen.setdefault(key, row.line)
        if problems:
            errors.append({"line": row.line, "errors": problems})
    if not rows and not errors:
        errors.append({"line": 1, "errors": ["no rows to import"]})

    doctors = {(d.department_id, d.name): d for d in (await session.scalars(select(Doctor))).all()}
    existing = {
        (s.doctor_id, s.date, s.half_day): s
        for s in (
            await session.scalars(
                select(Schedule).where(
                    Schedule.date >= min((r.date for r in rows), default=date.max),
                    Schedule.date <= max((r.date for r in rows), default=date.min),
                )
            )
        ).all()
    }
    for row in rows:
        department = departments.get(row.department_code)
        doctor = doctors.get((department.id, row.doctor_name)) if department else None
        current = existing.get((doctor.id, row.date, row.half_day)) if doctor else None
        if current is not None and row.capacity < current.booked_count:
            errors.append(
                {
                    "line": row.line,
                    "errors": [f"capacity {row.capacity} is below the {current.booked_count} already booked"],
                }
            )
    if errors:
        raise ImportRejected(sorted(errors, key=lambda e: int(str(e["line"]))))

    result = ImportResult(rows=len(rows))
    for row in rows:
        department = departments[row.department_code]
        doctor = doctors.get((department.id, row.doctor_name))
        if doctor is None:
            doctor = Doctor(department_id=department.id, name=row.doctor_name, title=row.title)
            session.add(doctor)
            await session.flush()
            doctors[(department.id, row.doctor_name)] = doctor
            result.doctors_created += 1
        else:
            doctor.title = row.title
        current = existing.get((doctor.id, row.date, row.half_day))
        if current is None:
            session.add(
                Schedule(doctor_id=doctor.id, date=row.date, half_day=row.half_day, capacity=row.capacity)
            )
            result.created += 1
        else:
            # A racing booking after validation is still safe: the CHECK constraint fails the commit.
            current.capacity = row.capacity
            result.updated += 1
    await session.flush()
    return result
