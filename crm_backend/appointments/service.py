"""Booking, cancelling and rescheduling, safe under concurrency.

Places are taken with one conditional UPDATE (`booked_count < capacity`), never a read-then-write in
Python, and the CHECK constraint `booked_count <= capacity` backs it up; the partial unique index on
booked appointments stops a patient booking one session twice. Each operation runs in a savepoint,
so a refused booking leaves the caller's transaction usable; the caller commits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from crm_backend.appointments.models import (
    Appointment,
    AppointmentReminder,
    AppointmentStatus,
    Department,
    Doctor,
    HalfDay,
    Schedule,
    ScheduleStatus,
)
from crm_backend.config import HOSPITAL_TZ
from crm_backend.patients.models import Patient

#: When each half-day session starts, hospital time (the cancellation cut-off counts from here).
SESSION_STARTS = {HalfDay.AM: time(8, 0), HalfDay.PM: time(13, 30)}
HALF_DAY_NAMES = {HalfDay.AM: "上午", HalfDay.PM: "下午"}
#: Titles patients mean by "专家号".
EXPERT_TITLES = ("主任医师", "副主任医师")
WEEKDAY_NAMES = ("周一", "周二", "周三", "周四", "周五", "周六", "周日")


class BookingError(Exception):
    """A refusal with a message fit to send to the patient as it is."""

    message = "预约没有成功，请稍后再试。"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.message)
        self.message = message or self.message


class ScheduleNotFound(BookingError):
    message = "没有找到这个号源，请重新选择就诊时间。"


class FullyBooked(BookingError):
    message = "抱歉，这个时段的号已经约满了，您可以换个时间或换位医生。"


class ScheduleClosed(BookingError):
    message = "抱歉，这个时段已停诊或暂停预约，请选择其他时间。"


class AlreadyBooked(BookingError):
    message = "您已经预约过这个时段了，不用重复预约。"


class NotCancellable(BookingError):
    message = "这个预约已经取消或已就诊，无法再取消。"


class CancelTooLate(BookingError):
    message = "距离就诊开始已不足{hours}小时，无法在线取消。如确实不能就诊，请致电医院门诊服务台。"

    def __init__(self, hours: float) -> None:
        super().__init__(self.message.format(hours=f"{hours:g}"))


def day_label(day: date) -> str:
    """e.g. "12月2日（周三）": patients think in weekdays as much as in dates."""
    return f"{day.month}月{day.day}日（{WEEKDAY_NAMES[day.weekday()]}）"


def session_start(day: date, half_day: HalfDay | str) -> datetime:
    """When a half-day session starts, as an aware datetime (hospital time)."""
    return datetime.combine(day, SESSION_STARTS[HalfDay(half_day)], tzinfo=HOSPITAL_TZ)


def hospital_today(now: datetime) -> date:
    return now.astimezone(HOSPITAL_TZ).date()


async def book(
    session: AsyncSession, patient_id: int, schedule_id: int, identity_id: int | None
) -> Appointment:
    """Take one place in `schedule_id` for the patient, or raise a `BookingError`; the caller commits."""
    try:
        async with session.begin_nested():
            # The place is taken by the database in one statement: concurrent bookers queue on the row
            # lock and each re-checks the condition, so the session can never be oversold.
            taken = await session.execute(
                update(Schedule)
                .where(
                    Schedule.id == schedule_id,
                    Schedule.status == ScheduleStatus.OPEN,
                    Schedule.booked_count < Schedule.capacity,
                )
                .values(booked_count=Schedule.booked_count + 1)
                .execution_options(synchronize_session=False)
            )
            if taken.rowcount != 1:  # type: ignore[attr-defined]
                raise await _why_not_bookable(session, patient_id, schedule_id)
            appointment = Appointment(
                patient_id=patient_id,
                schedule_id=schedule_id,
                booked_by_identity_id=identity_id,
                status=AppointmentStatus.BOOKED,
            )
            session.add(appointment)
            await session.flush()
    except IntegrityError as exc:
        # The partial unique index: this patient already holds a booking in this session. The
        # savepoint rollback has given the place back.
        if _is_duplicate_booking(exc):
            raise AlreadyBooked() from exc
        raise
    return appointment


async def _why_not_bookable(session: AsyncSession, patient_id: int, schedule_id: int) -> BookingError:
    """Tell the patient the real reason: their own booking of a full session is "already booked"."""
    schedule = await session.get(Schedule, schedule_id, populate_existing=True)
    if schedule is None:
        return ScheduleNotFound()
    mine = await session.scalar(
        select(Appointment.id).where(
            Appointment.patient_id == patient_id,
            Appointment.schedule_id == schedule_id,
            Appointment.status == AppointmentStatus.BOOKED,
        )
    )
    if mine is not None:
        return AlreadyBooked()
    if schedule.status != ScheduleStatus.OPEN:
        return ScheduleClosed()
    return FullyBooked()


def _is_duplicate_booking(exc: IntegrityError) -> bool:
    text = str(exc.orig).lower()
    return "uq_appointments_booked_patient_schedule" in text or (
        "unique" in text and "appointments.patient_id" in text
    )


async def cancel(
    session: AsyncSession, appointment: Appointment, now: datetime, cutoff: timedelta
) -> Appointment:
    """Cancel a booking unless the session starts within `cutoff`; the place goes back on sale."""
    schedule = await session.get(Schedule, appointment.schedule_id)
    if schedule is None or appointment.status != AppointmentStatus.BOOKED:
        raise NotCancellable()
    if session_start(schedule.date, schedule.half_day) - now < cutoff:
        raise CancelTooLate(cutoff.total_seconds() / 3600)
    async with session.begin_nested():
        # Conditional on still being booked, so two simultaneous cancels return one place, not two.
        changed = await session.execute(
            update(Appointment)
            .where(Appointment.id == appointment.id, Appointment.status == AppointmentStatus.BOOKED)
            .values(status=AppointmentStatus.CANCELLED, cancelled_at=now)
            .execution_options(synchronize_session=False)
        )
        if changed.rowcount != 1:  # type: ignore[attr-defined]
            raise NotCancellable()
        await session.execute(
            update(Schedule)
            .where(Schedule.id == appointment.schedule_id)
            .values(booked_count=Schedule.booked_count - 1)
            .execution_options(synchronize_session=False)
        )
    await session.refresh(appointment)
    return appointment


async def reschedule(
    session: AsyncSession,
    appointment: Appointment,
    new_schedule_id: int,
    identity_id: int | None,
    now: datetime,
    cutoff: timedelta,
) -> Appointment:
    """Book the new session and cancel the old one together: either both happen or neither."""
    if appointment.status != AppointmentStatus.BOOKED:
        raise NotCancellable()
    async with session.begin_nested():
        new = await book(session, appointment.patient_id, new_schedule_id, identity_id)
        await cancel(session, appointment, now, cutoff)
    return new


@dataclass(frozen=True, slots=True)
class Opening:
    """A session with places left, as dialogues and the console show it."""

    schedule_id: int
    department_id: int
    department: str
    doctor_id: int
    doctor: str
    title: str
    date: date
    half_day: HalfDay
    available: int

    @property
    def label(self) -> str:
        """e.g. "11月24日（周二）上午 张立新 主任医师（余5个号）"."""
        when = f"{day_label(self.date)}{HALF_DAY_NAMES[self.half_day]}"
        return f"{when} {self.doctor} {self.title}（余{self.available}个号）"


async def find_department(session: AsyncSession, words: str) -> Department | None:
    """The department a patient (or staff) named by code, name or alias ("心内科" → 心血管内科)."""
    for department in (await session.scalars(select(Department).order_by(Department.id))).all():
        if department.matches(words):
            return department
    return None


def _openings_query(department_id: int) -> Select[tuple[Schedule]]:
    return (
        select(Schedule)
        .join(Doctor, Schedule.doctor_id == Doctor.id)
        .options(joinedload(Schedule.doctor).joinedload(Doctor.department))
        .where(
            Doctor.department_id == department_id,
            Doctor.active.is_(True),
            Schedule.status == ScheduleStatus.OPEN,
            Schedule.booked_count < Schedule.capacity,
        )
    )


def _opening(schedule: Schedule) -> Opening:
    doctor = schedule.doctor
    return Opening(
        schedule_id=schedule.id,
        department_id=doctor.department_id,
        department=doctor.department.patient_name,
        doctor_id=doctor.id,
        doctor=doctor.name,
        title=doctor.title,
        date=schedule.date,
        half_day=HalfDay(schedule.half_day),
        available=schedule.available,
    )


def _not_started(openings: list[Opening], now: datetime | None) -> list[Opening]:
    if now is None:
        return openings
    return [o for o in openings if session_start(o.date, o.half_day) > now]


async def available_schedules(
    session: AsyncSession,
    department: Department,
    date_from: date,
    date_to: date,
    doctor_id: int | None = None,
    now: datetime | None = None,
) -> list[Opening]:
    """Sessions with places left between two dates (inclusive), earliest first; with `now`, not started."""
    query = _openings_query(department.id).where(Schedule.date >= date_from, Schedule.date <= date_to)
    if doctor_id is not None:
        query = query.where(Schedule.doctor_id == doctor_id)
    query = query.order_by(Schedule.date, Schedule.half_day, Schedule.doctor_id)
    schedules = (await session.scalars(query)).unique().all()
    return _not_started([_opening(s) for s in schedules], now)


async def nearest_alternatives(
    session: AsyncSession,
    department: Department,
    wanted: date,
    now: datetime,
    limit: int = 5,
    within_days: int = 14,
) -> list[Opening]:
    """When the wanted day is full: the department's sessions with places closest to it, either side,
    never in the past (any doctor, nearest day first, earlier day on a tie)."""
    earliest = max(wanted - timedelta(days=within_days), hospital_today(now))
    latest = wanted + timedelta(days=within_days)
    openings = await available_schedules(session, department, earliest, latest, now=now)
    openings.sort(key=lambda o: (abs((o.date - wanted).days), o.date, o.half_day != HalfDay.AM))
    return openings[:limit]


#: Loads an appointment's session, doctor and department with it: every view of one needs all three.
WITH_SESSION = joinedload(Appointment.schedule).joinedload(Schedule.doctor).joinedload(Doctor.department)


async def load_appointment(session: AsyncSession, appointment_id: int) -> Appointment | None:
    """The appointment as it is in the database now (after conditional UPDATEs), with its session."""
    return await session.scalar(
        select(Appointment)
        .options(WITH_SESSION)
        .where(Appointment.id == appointment_id)
        .execution_options(populate_existing=True)
    )


APPOINTMENT_STATUS_NAMES = {
    AppointmentStatus.BOOKED: "已预约",
    AppointmentStatus.CANCELLED: "已取消",
    AppointmentStatus.COMPLETED: "已就诊",
}


async def _appointments_where(
    session: AsyncSession, condition: ColumnElement[bool], limit: int
) -> list[tuple[Appointment, AppointmentReminder | None]]:
    """Appointments with their session, doctor and department loaded, latest session first."""
    rows = await session.execute(
        select(Appointment, AppointmentReminder)
        .join(Schedule, Schedule.id == Appointment.schedule_id)
        .outerjoin(AppointmentReminder, AppointmentReminder.appointment_id == Appointment.id)
        .options(WITH_SESSION)
        .where(condition)
        .order_by(Schedule.date.desc(), Schedule.half_day.desc(), Appointment.id.desc())
        .limit(limit)
    )
    return [(appointment, reminder) for appointment, reminder in rows.all()]


async def patient_appointments(
    session: AsyncSession, patient_id: int, limit: int = 50
) -> list[dict[str, Any]]:
    """A patient's appointments for the 360 view, with who booked and the day-before reminder's outcome."""
    rows = await _appointments_where(session, Appointment.patient_id == patient_id, limit)
    return [
        {
            "id": appointment.id,
            "status": appointment.status,
            "date": appointment.schedule.date.isoformat(),
            "half_day": appointment.schedule.half_day,
            "department": appointment.schedule.doctor.department.patient_name,
            "doctor": appointment.schedule.doctor.name,
            "title": appointment.schedule.doctor.title,
            "booked_by_identity_id": appointment.booked_by_identity_id,
            "created_at": appointment.created_at.isoformat(),
            "cancelled_at": appointment.cancelled_at.isoformat() if appointment.cancelled_at else None,
            "reminder": {"status": reminder.status, "channel": reminder.channel} if reminder else None,
        }
        for appointment, reminder in rows
    ]


async def family_appointments(
    session: AsyncSession, patient_id: int, identity_ids: list[int], limit: int = 10
) -> list[dict[str, str]]:
    """For the console's patient panel: the patient's own appointments and those their WeChat
    identities booked for family members, so an agent sees the mother's booking in the son's chat."""
    condition = Appointment.patient_id == patient_id
    if identity_ids:
        condition = or_(condition, Appointment.booked_by_identity_id.in_(identity_ids))
    rows = await _appointments_where(session, condition, limit)
    patient_ids = {appointment.patient_id for appointment, _ in rows}
    names = dict(
        (
            await session.execute(select(Patient.id, Patient.display_name).where(Patient.id.in_(patient_ids)))
        ).all()
    )
    result = []
    for appointment, _ in rows:
        schedule = appointment.schedule
        doctor = schedule.doctor
        when = f"{day_label(schedule.date)}{HALF_DAY_NAMES[HalfDay(schedule.half_day)]}"
        who = names.get(appointment.patient_id) or f"患者 {appointment.patient_id}"
        status = AppointmentStatus(appointment.status)
        result.append(
            {
                "label": f"{who} · {when} {doctor.department.patient_name} {doctor.name}",
                "status": APPOINTMENT_STATUS_NAMES.get(status, status.value),
            }
        )
    return result
