"""The bot API for booking: understand a request, offer sessions, book, list, cancel, reschedule.

Called by the action server (bot/dialogs/booking.py). Every appointment operation is limited to the
patients the calling WeChat identity manages (就诊人), and every refusal carries a Chinese message
the dialogue sends as it is, plus the nearest alternatives when a session is full.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_backend.appointments import service
from crm_backend.appointments.models import (
    Appointment,
    AppointmentStatus,
    Department,
    Doctor,
    HalfDay,
    Schedule,
)
from crm_backend.appointments.reminders import reminder_wording
from crm_backend.appointments.service import (
    EXPERT_TITLES,
    HALF_DAY_NAMES,
    BookingError,
    Opening,
    day_label,
    hospital_today,
    session_start,
)
from crm_backend.appointments.understanding import read_booking_words
from crm_backend.database.core import RowId, utcnow
from crm_backend.patients.bot_access import BOT_API_PREFIX, BotToken, SenderIdentity
from crm_backend.patients.models import Patient, PatientLink, WeChatIdentity
from crm_backend.staff.deps import DbSession, runtime_of

router = APIRouter(prefix=BOT_API_PREFIX, tags=["bot"], dependencies=[BotToken])

#: How far ahead patients may book in chat (hospitals publish about two weeks of sessions).
BOOKING_HORIZON_DAYS = 30
#: Options in one numbered list: more than this is hard to read on a phone.
MAX_OPTIONS = 8


class OpeningRead(BaseModel):
    """A session with places, as the booking form offers it."""

    schedule_id: int
    department: str
    doctor: str
    title: str
    date: date
    half_day: str
    available: int
    label: str
    #: For the confirmation: the places left are news in a list, noise in a summary.
    summary: str


class AppointmentRead(BaseModel):
    id: int
    patient_id: int
    patient_name: str | None
    department_id: int
    department: str
    doctor: str
    title: str
    date: date
    half_day: str
    label: str


class AppointmentAnswer(BaseModel):
    appointment: AppointmentRead


class AppointmentsRead(BaseModel):
    appointments: list[AppointmentRead]


class NamedRef(BaseModel):
    id: int
    name: str


class DoctorRef(NamedRef):
    department_id: int


class UnderstoodRead(BaseModel):
    """What one message says about a booking; absent parts are null."""

    department: NamedRef | None
    doctor: DoctorRef | None
    any_doctor: bool
    expert: bool
    date_from: date | None
    date_to: date | None
    date_label: str | None
    half_day: str | None
    relationship: str | None


class OpeningsRead(BaseModel):
    openings: list[OpeningRead]
    alternatives: list[OpeningRead]
    #: past, too_far or full, with the sentence the patient reads; null when there are openings.
    problem: str | None = None
    message: str | None = None


def _opening(o: Opening) -> OpeningRead:
    return OpeningRead(
        schedule_id=o.schedule_id,
        department=o.department,
        doctor=o.doctor,
        title=o.title,
        date=o.date,
        half_day=o.half_day.value,
        available=o.available,
        label=o.label,
        summary=f"{day_label(o.date)}{HALF_DAY_NAMES[o.half_day]} {o.doctor} {o.title}",
    )


def _appointment(appointment: Appointment, patient: Patient) -> AppointmentRead:
    schedule = appointment.schedule
    doctor = schedule.doctor
    when = f"{day_label(schedule.date)}{HALF_DAY_NAMES[HalfDay(schedule.half_day)]}"
    name = patient.display_name or "就诊人"
    return AppointmentRead(
        id=appointment.id,
        patient_id=patient.id,
        patient_name=patient.display_name,
        department_id=doctor.department_id,
        department=doctor.department.patient_name,
        doctor=doctor.name,
        title=doctor.title,
        date=schedule.date,
        half_day=schedule.half_day,
        label=f"{name} {when} {doctor.department.patient_name} {doctor.name} {doctor.title}",
    )


# -- understanding ---------------------------------------------------------------------------


class Understand(BaseModel):
    text: Annotated[str, Field(max_length=2000)]


@router.post("/booking/understand")
async def understand(body: Understand, session: DbSession, identity: SenderIdentity) -> UnderstoodRead:
    """Everything a message says about a booking; absent parts are null."""
    words = await read_booking_words(session, body.text, utcnow())
    when = words.when
    department, doctor = words.department, words.doctor
    return UnderstoodRead(
        department=NamedRef(id=department.id, name=department.patient_name) if department else None,
        doctor=DoctorRef(id=doctor.id, name=doctor.name, department_id=doctor.department_id)
        if doctor
        else None,
        any_doctor=words.any_doctor,
        expert=words.expert,
        date_from=when.date_from if when else None,
        date_to=when.date_to if when else None,
        date_label=_range_label(when.date_from, when.date_to) if when else None,
        half_day=words.half_day.value if words.half_day else None,
        relationship=words.relation.value if words.relation else None,
    )


def _range_label(first: date, last: date) -> str:
    return day_label(first) if first == last else f"{day_label(first)}至{day_label(last)}"


# -- openings --------------------------------------------------------------------------------


class OpeningsQuery(BaseModel):
    department_id: RowId
    date_from: date
    date_to: date
    half_day: HalfDay | None = None
    doctor_id: RowId | None = None
    expert: bool = False


@router.post("/booking/openings")
async def openings(body: OpeningsQuery, session: DbSession, identity: SenderIdentity) -> OpeningsRead:
    """Sessions with places on the wanted day(s); when there are none, the nearest alternatives and why."""
    department = await session.get(Department, body.department_id)
    if department is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such department")
    now = utcnow()
    today = hospital_today(now)
    first, last = max(body.date_from, today), min(body.date_to, today + timedelta(days=BOOKING_HORIZON_DAYS))
    if body.date_to < today:
        return OpeningsRead(
            openings=[], alternatives=[], problem="past", message="这个日期已经过去了，请换一个日期。"
        )
    if first > last:
        message = f"目前只能预约{BOOKING_HORIZON_DAYS}天内的号，请选择近一些的日期。"
        return OpeningsRead(openings=[], alternatives=[], problem="too_far", message=message)
    found = await service.available_schedules(session, department, first, last, body.doctor_id, now=now)
    found = [o for o in found if _wanted(o, body)]
    if found:
        return OpeningsRead(openings=[_opening(o) for o in found[:MAX_OPTIONS]], alternatives=[])
    nearby = await service.nearest_alternatives(session, department, first, now, limit=MAX_OPTIONS - 3)
    wanted = f"{_range_label(first, last)}{_half_day_words(body)}"
    return OpeningsRead(
        openings=[],
        alternatives=[_opening(o) for o in nearby],
        problem="full",
        message=f"抱歉，{department.patient_name}在{wanted}没有可预约的号了。",
    )


def _wanted(opening: Opening, query: OpeningsQuery) -> bool:
    if query.half_day is not None and opening.half_day != query.half_day:
        return False
    return not query.expert or opening.title in EXPERT_TITLES


def _half_day_words(query: OpeningsQuery) -> str:
    words = HALF_DAY_NAMES[query.half_day] if query.half_day else ""
    return words + ("的专家号" if query.expert else "")


# -- appointments ----------------------------------------------------------------------------


async def _managed_patient(session: AsyncSession, identity: WeChatIdentity, patient_id: int) -> Patient:
    """404 unless the identity may book for this patient: one family's account never reaches another's."""
    link = await session.get(PatientLink, (identity.id, patient_id))
    patient = await session.get(Patient, patient_id) if link is not None else None
    if patient is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "not one of this account's patients")
    return patient


async def _managed_appointment(
    session: AsyncSession, identity: WeChatIdentity, appointment_id: int
) -> tuple[Appointment, Patient]:
    appointment = await service.load_appointment(session, appointment_id)
    if appointment is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such appointment")
    return appointment, await _managed_patient(session, identity, appointment.patient_id)


def _refusal(exc: BookingError, alternatives: list[Opening] | None = None) -> JSONResponse:
    body = {
        "message": exc.message,
        "alternatives": [_opening(o).model_dump(mode="json") for o in alternatives or []],
    }
    return JSONResponse(body, status_code=status.HTTP_409_CONFLICT)


async def _alternatives_for(session: AsyncSession, schedule_id: int, now: datetime) -> list[Opening]:
    schedule = await session.get(Schedule, schedule_id)
    doctor = await session.get(Doctor, schedule.doctor_id) if schedule else None
    department = await session.get(Department, doctor.department_id) if doctor else None
    if schedule is None or department is None:
        return []
    return await service.nearest_alternatives(session, department, schedule.date, now, limit=MAX_OPTIONS - 3)


class NewAppointment(BaseModel):
    patient_id: RowId
    schedule_id: RowId


async def _loaded(session: AsyncSession, appointment_id: int) -> Appointment:
    appointment = await service.load_appointment(session, appointment_id)
    assert appointment is not None  # just written in this session
    return appointment


async def _take_place(
    session: AsyncSession,
    patient: Patient,
    schedule_id: int,
    now: datetime,
    take: Callable[[], Awaitable[Appointment]],
) -> AppointmentAnswer | JSONResponse:
    """Book or move into a session: refused with the nearest alternatives when it cannot be had."""
    schedule = await session.get(Schedule, schedule_id)
    if schedule is not None and session_start(schedule.date, schedule.half_day) <= now:
        return _refusal(service.ScheduleClosed("这个时段已经开始或结束了，请选择其他时间。"))
    try:
        appointment = await take()
    except BookingError as exc:
        alternatives = await _alternatives_for(session, schedule_id, now)
        await session.rollback()
        return _refusal(exc, alternatives)
    await session.commit()
    return AppointmentAnswer(appointment=_appointment(await _loaded(session, appointment.id), patient))


@router.post("/appointments", status_code=status.HTTP_201_CREATED, response_model=None)
async def book(
    body: NewAppointment, session: DbSession, identity: SenderIdentity
) -> AppointmentAnswer | JSONResponse:
    patient = await _managed_patient(session, identity, body.patient_id)
    return await _take_place(
        session,
        patient,
        body.schedule_id,
        utcnow(),
        lambda: service.book(session, patient.id, body.schedule_id, identity.id),
    )


@router.get("/appointments")
async def upcoming(session: DbSession, identity: SenderIdentity) -> AppointmentsRead:
    """Booked appointments of every patient this identity manages, from today on, soonest first."""
    today = hospital_today(utcnow())
    rows = (
        await session.execute(
            select(Appointment, Patient)
            .join(Patient, Patient.id == Appointment.patient_id)
            .join(PatientLink, PatientLink.patient_id == Patient.id)
            .join(Schedule, Schedule.id == Appointment.schedule_id)
            .options(service.WITH_SESSION)
            .where(
                PatientLink.identity_id == identity.id,
                Appointment.status == AppointmentStatus.BOOKED,
                Schedule.date >= today,
            )
            .order_by(Schedule.date, Schedule.half_day, Appointment.id)
        )
    ).all()
    return AppointmentsRead(appointments=[_appointment(a, p) for a, p in rows])


@router.post("/appointments/{appointment_id}/cancel", response_model=None)
async def cancel(
    appointment_id: RowId, request: Request, session: DbSession, identity: SenderIdentity
) -> AppointmentAnswer | JSONResponse:
    appointment, patient = await _managed_appointment(session, identity, appointment_id)
    cutoff = timedelta(hours=runtime_of(request).settings.booking_cancel_cutoff_hours)
    try:
        await service.cancel(session, appointment, utcnow(), cutoff)
    except BookingError as exc:
        await session.rollback()
        return _refusal(exc)
    await session.commit()
    return AppointmentAnswer(appointment=_appointment(await _loaded(session, appointment.id), patient))


class Reschedule(BaseModel):
    schedule_id: RowId


@router.post("/appointments/{appointment_id}/reschedule", response_model=None)
async def reschedule(
    appointment_id: RowId, body: Reschedule, request: Request, session: DbSession, identity: SenderIdentity
) -> AppointmentAnswer | JSONResponse:
    appointment, patient = await _managed_appointment(session, identity, appointment_id)
    now = utcnow()
    cutoff = timedelta(hours=runtime_of(request).settings.booking_cancel_cutoff_hours)
    return await _take_place(
        session,
        patient,
        body.schedule_id,
        now,
        lambda: service.reschedule(session, appointment, body.schedule_id, identity.id, now, cutoff),
    )


class ReminderRead(BaseModel):
    text: str


@router.get("/appointments/{appointment_id}/reminder")
async def reminder(
    appointment_id: RowId, request: Request, session: DbSession, identity: SenderIdentity
) -> ReminderRead:
    """The day-before reminder the bot says (action_appointment_reminder), worded for this account:
    its own appointment, or one of a 就诊人 it manages (404 otherwise)."""
    appointment = await service.load_appointment(session, appointment_id)
    if appointment is None or (
        appointment.patient_id != identity.patient_id
        and await session.get(PatientLink, (identity.id, appointment.patient_id)) is None
    ):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "not one of this account's appointments")
    patient = await session.get(Patient, appointment.patient_id)
    assert patient is not None
    settings = request.app.state.runtime.settings
    return ReminderRead(text=reminder_wording(appointment, patient, identity, settings).text())
