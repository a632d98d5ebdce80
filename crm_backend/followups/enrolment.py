"""Enrolment: a patient put on a plan version, with one check-in row per time point.

The check-ins are materialised at enrolment with their due times (the time point's hour on the
anchor date plus its day, hospital time, stored UTC) and answer windows, so the worker only claims
rows that are due (dispatch.py) and nothing depends on in-memory timers. Pause, resume and stop act
on those rows; a stop also fails the check-ins' queued dialogue turns, so nothing more is sent.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from crm_backend.config import HOSPITAL_TZ, Settings
from crm_backend.conversations.models import DeliveryStatus, InboundMessage, InboundStatus, Message
from crm_backend.followups.models import (
    CheckinStatus,
    EnrolmentSource,
    EnrolmentStatus,
    FollowupCheckin,
    FollowupEnrolment,
    FollowupPlanVersion,
    FollowupSend,
    StopReason,
)
from crm_backend.followups.plan_service import definition_of
from crm_backend.followups.plans import PlanDefinition
from crm_backend.patients.models import Patient

log = logging.getLogger(__name__)

#: The key prefix of a check-in's dialogues (conversations/turns.py stores "dialogue:<key>").
CHECKIN_DIALOGUE = "followup:checkin:"
#: Check-in states after which nothing more happens to it.
FINAL = (CheckinStatus.answered, CheckinStatus.missed, CheckinStatus.skipped)
#: Check-in states that may still send something.
OPEN = (CheckinStatus.scheduled, CheckinStatus.claimed, CheckinStatus.started)


#: The dates an enrolment may count from or be discharged on: a year mistyped as 9999 would put the
#: check-ins past the end of the calendar, and nobody is followed up for a discharge in 1900.
EARLIEST_DATE = date(2000, 1, 1)
LATEST_DATE = date(2100, 12, 31)


def date_problem(field: str, value: date) -> str | None:
    """Why `value` cannot be an enrolment's `field` (anchor_date, discharged_on), or None."""
    if EARLIEST_DATE <= value <= LATEST_DATE:
        return None
    return f"{field} {value.isoformat()}: outside {EARLIEST_DATE.isoformat()} to {LATEST_DATE.isoformat()}"


class EnrolmentError(ValueError):
    """A request that cannot be carried out as asked; `status_code` is the HTTP answer for it."""

    def __init__(self, message: str, status_code: int = 422) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code


@dataclass(frozen=True, slots=True)
class PlannedCheckin:
    time_point: int
    day: int
    due_at: datetime
    window_ends_at: datetime
    status: CheckinStatus
    reason: str = ""


@dataclass(frozen=True, slots=True)
class EnrolmentRequest:
    patient_id: int
    plan_version_id: int
    anchor_date: date
    discharged_on: date
    team_id: int
    source: EnrolmentSource
    attending_doctor: str = ""
    procedure: str = ""
    encounter_key: str | None = None
    created_by_staff_id: int | None = None


def hospital_time(day: date, hour: int) -> datetime:
    """`hour` o'clock on `day` in the hospital's time zone, as UTC."""
    return datetime.combine(day, time(hour), tzinfo=HOSPITAL_TZ).astimezone(UTC)


def plan_checkins(
    definition: PlanDefinition, anchor_date: date, now: datetime, missed_after: timedelta
) -> list[PlannedCheckin]:
    """Each time point's check-in: due at its hour on anchor + day, answerable until the next one is
    due (at most `missed_after` after its own due time). One whose window has already closed at
    enrolment is skipped; one due but still inside its window starts at the next dispatch."""
    dues = [hospital_time(anchor_date + timedelta(days=p.day), p.hour) for p in definition.time_points]
    planned = []
    for index, (point, due) in enumerate(zip(definition.time_points, dues, strict=True)):
        window_end = due + missed_after
        if index + 1 < len(dues):
            window_end = min(window_end, dues[index + 1])
        if window_end <= now:
            status, reason = CheckinStatus.skipped, "its answer window had closed before enrolment"
        else:
            status, reason = CheckinStatus.scheduled, ""
        planned.append(PlannedCheckin(index, point.day, due, window_end, status, reason))
    return planned


async def already_enrolled(
    session: AsyncSession, patient_id: int, plan_version_id: int, anchor_date: date
) -> FollowupEnrolment | None:
    """An active or paused enrolment of the patient in the same plan (any version) from the same
    anchor date: enrolling again would ask every question twice a day (a CSV uploaded twice after a
    timeout, a double click). Staff stop or finish the first to enrol again."""
    version = await session.get(FollowupPlanVersion, plan_version_id)
    if version is None:
        return None
    same_plan = select(FollowupPlanVersion.id).where(FollowupPlanVersion.plan_id == version.plan_id)
    return await session.scalar(
        select(FollowupEnrolment)
        .where(
            FollowupEnrolment.patient_id == patient_id,
            FollowupEnrolment.plan_version_id.in_(same_plan),
            FollowupEnrolment.anchor_date == anchor_date,
            FollowupEnrolment.status.in_((EnrolmentStatus.active, EnrolmentStatus.paused)),
        )
        .order_by(FollowupEnrolment.id)
        .limit(1)
    )


async def hold_patients(session: AsyncSession, patient_ids: Collection[int]) -> None:
    """Hold these patients' rows for the transaction, before `already_enrolled` is asked: of two
    enrolments of one patient at once (a double click, a file uploaded twice) the second waits
    for the first and then finds it. An UPDATE that changes nothing locks the rows on PostgreSQL
    and takes SQLite's write lock (as page.lock_checkin does); call it before reading anything."""
    if patient_ids:
        # updated_at named too, so its onupdate leaves the record's last change as it was.
        await session.execute(
            update(Patient)
            .where(Patient.id.in_(sorted(patient_ids)))
            .values(id=Patient.id, updated_at=Patient.updated_at)
        )


async def enrol(
    session: AsyncSession, request: EnrolmentRequest, settings: Settings, now: datetime | None = None
) -> FollowupEnrolment:
    """Add the enrolment and its check-ins to `session` (flushed; the caller commits). EnrolmentError
    (422) for a date outside EARLIEST_DATE to LATEST_DATE."""
    for field, value in (("anchor_date", request.anchor_date), ("discharged_on", request.discharged_on)):
        problem = date_problem(field, value)
        if problem is not None:
            raise EnrolmentError(problem)
    now = now or datetime.now(UTC)
    version = await session.get(FollowupPlanVersion, request.plan_version_id)
    if version is None:
        raise EnrolmentError(f"no plan version {request.plan_version_id}", 404)
    definition = definition_of(version)
    enrolment = FollowupEnrolment(
        patient_id=request.patient_id,
        plan_version_id=version.id,
        anchor_date=request.anchor_date,
        discharged_on=request.discharged_on,
        team_id=request.team_id,
        attending_doctor=request.attending_doctor[:64],
        procedure=request.procedure[:200],
        source=request.source,
        encounter_key=request.encounter_key,
        status=EnrolmentStatus.active,
        created_by_staff_id=request.created_by_staff_id,
        created_at=now,
        status_changed_at=now,
    )
    session.add(enrolment)
    await session.flush()
    missed_after = timedelta(hours=settings.followup_missed_after_hours)
    for planned in plan_checkins(definition, request.anchor_date, now, missed_after):
        session.add(
            FollowupCheckin(
                enrolment_id=enrolment.id,
                time_point=planned.time_point,
                day=planned.day,
                due_at=planned.due_at,
                window_ends_at=planned.window_ends_at,
                status=planned.status,
                reason=planned.reason,
            )
        )
    await session.flush()
    log.info(
        "patient %s enrolled in plan %s v%s (enrolment %s, %s)",
        request.patient_id,
        definition.code,
        version.version,
        enrolment.id,
        request.source,
    )
    return enrolment


async def checkins_of(session: AsyncSession, enrolment_id: int) -> list[FollowupCheckin]:
    return list(
        (
            await session.scalars(
                select(FollowupCheckin)
                .where(FollowupCheckin.enrolment_id == enrolment_id)
                .order_by(FollowupCheckin.time_point)
            )
        ).all()
    )


async def _locked(session: AsyncSession, enrolment_id: int) -> FollowupEnrolment:
    enrolment = await session.scalar(
        select(FollowupEnrolment).where(FollowupEnrolment.id == enrolment_id).with_for_update()
    )
    if enrolment is None:
        raise EnrolmentError(f"no enrolment {enrolment_id}", 404)
    return enrolment


async def pause_enrolment(
    session: AsyncSession, enrolment_id: int, now: datetime | None = None
) -> FollowupEnrolment:
    """Nothing new starts while paused; check-ins already started carry on (the caller commits)."""
    enrolment = await _locked(session, enrolment_id)
    if enrolment.status != EnrolmentStatus.active:
        raise EnrolmentError(f"only an active enrolment can be paused (it is {enrolment.status})", 409)
    enrolment.status = EnrolmentStatus.paused
    enrolment.status_changed_at = now or datetime.now(UTC)
    return enrolment


async def resume_enrolment(
    session: AsyncSession, enrolment_id: int, now: datetime | None = None
) -> FollowupEnrolment:
    """Active again; check-ins whose window closed during the pause are skipped, not sent late."""
    now = now or datetime.now(UTC)
    enrolment = await _locked(session, enrolment_id)
    if enrolment.status != EnrolmentStatus.paused:
        raise EnrolmentError(f"only a paused enrolment can be resumed (it is {enrolment.status})", 409)
    enrolment.status = EnrolmentStatus.active
    enrolment.status_changed_at = now
    await session.execute(
        update(FollowupCheckin)
        .where(
            FollowupCheckin.enrolment_id == enrolment_id,
            FollowupCheckin.status == CheckinStatus.scheduled,
            FollowupCheckin.window_ends_at <= now,
        )
        .values(
            status=CheckinStatus.skipped, reason="its answer window closed while the enrolment was paused"
        )
    )
    return enrolment


async def stop_enrolment(
    session: AsyncSession,
    enrolment_id: int,
    reason: StopReason,
    *,
    note: str = "",
    now: datetime | None = None,
) -> FollowupEnrolment:
    """Stop for good (readmitted, deceased, opted out, other): every open check-in is skipped and
    its queued dialogue turn failed, so nothing more reaches the patient. The caller commits; the
    check-in dialogue's opt-out (不想再收到随访) calls this too. Stopping twice keeps the first stop."""
    now = now or datetime.now(UTC)
    enrolment = await _locked(session, enrolment_id)
    if enrolment.status == EnrolmentStatus.stopped:
        return enrolment
    if enrolment.status == EnrolmentStatus.completed:
        raise EnrolmentError("the enrolment is already completed", 409)
    enrolment.status = EnrolmentStatus.stopped
    enrolment.stop_reason = StopReason(reason)
    enrolment.stop_note = note[:300]
    enrolment.status_changed_at = now
    open_ids = list(
        (
            await session.scalars(
                select(FollowupCheckin.id).where(
                    FollowupCheckin.enrolment_id == enrolment_id, FollowupCheckin.status.in_(OPEN)
                )
            )
        ).all()
    )
    if open_ids:
        await session.execute(
            update(FollowupCheckin)
            .where(FollowupCheckin.id.in_(open_ids), FollowupCheckin.status.in_(OPEN))
            .values(status=CheckinStatus.skipped, reason=f"enrolment stopped ({reason})")
        )
        await cancel_dialogues(session, open_ids, f"follow-up stopped ({reason})")
    log.info("enrolment %s stopped: %s", enrolment_id, reason)
    return enrolment


async def cancel_dialogues(session: AsyncSession, checkin_ids: list[int], why: str) -> None:
    """Fail the check-ins' dialogue turns not yet taken up and any invitation or reminder stored
    but not yet sent (WeChat was out of reach), so nothing of these check-ins reaches the patient.
    The caller commits."""
    keys = [f"dialogue:{CHECKIN_DIALOGUE}{checkin_id}" for checkin_id in checkin_ids]
    turns = select(InboundMessage.id).where(
        or_(
            InboundMessage.dedupe_key.in_(keys),
            *(InboundMessage.dedupe_key.like(f"{key}:%") for key in keys),
        )
    )
    await session.execute(
        update(InboundMessage)
        .where(InboundMessage.id.in_(turns), InboundMessage.status == InboundStatus.RECEIVED)
        .values(status=InboundStatus.FAILED, last_error=why[:255])
    )
    # Invitations stored by a turn, and reminders and invitations the dispatcher stored itself
    # (their sends name the message).
    sent_by_dispatch = select(FollowupSend.message_id).where(
        FollowupSend.checkin_id.in_(checkin_ids), FollowupSend.message_id.is_not(None)
    )
    await session.execute(
        update(Message)
        .where(
            or_(Message.reply_to_inbound_id.in_(turns), Message.id.in_(sent_by_dispatch)),
            Message.delivery_status == DeliveryStatus.PENDING,
        )
        .values(delivery_status=DeliveryStatus.FAILED, delivery_error=why[:255])
    )


async def stop_for_checkin(
    session: AsyncSession,
    checkin_id: int,
    reason: StopReason = StopReason.opted_out,
    *,
    note: str = "",
    now: datetime | None = None,
) -> FollowupEnrolment:
    """Stop the enrolment a check-in belongs to: what the check-in dialogue's confirmed
    不想再收到随访 does (it knows the check-in, not the enrolment). The caller commits."""
    checkin = await session.get(FollowupCheckin, checkin_id)
    if checkin is None:
        raise EnrolmentError(f"no check-in {checkin_id}", 404)
    return await stop_enrolment(session, checkin.enrolment_id, reason, note=note, now=now)


async def settle_enrolment(session: AsyncSession, enrolment: FollowupEnrolment, settings: Settings) -> None:
    """Lost to follow-up after enough missed check-ins; completed once every check-in is final."""
    statuses = [c.status for c in await checkins_of(session, enrolment.id)]
    missed = sum(1 for status in statuses if status == CheckinStatus.missed)
    lost = missed >= settings.followup_lost_after_missed
    if lost != enrolment.lost_to_followup:
        # Both ways: a missed check-in a nurse then answers by phone is no longer missed, and a
        # patient reached is not lost (the report would count them followed up and lost at once).
        enrolment.lost_to_followup = lost
        log.info("enrolment %s: lost to follow-up %s (%s missed check-ins)", enrolment.id, lost, missed)
    if enrolment.status == EnrolmentStatus.active and all(status in FINAL for status in statuses):
        enrolment.status = EnrolmentStatus.completed
        enrolment.status_changed_at = datetime.now(UTC)
