"""Helpers for the enrolment, HIS, CSV and dispatch tests: plans, patients and teams in the database."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import or_, select

from channels.outbound.delivery import Outbox
from crm_backend.config import HOSPITAL_TZ
from crm_backend.consent.models import ConsentRecord
from crm_backend.conversations.models import Conversation, InboundMessage
from crm_backend.escalations.models import Escalation
from crm_backend.followups.dispatch import run_followups
from crm_backend.followups.enrolment import EnrolmentRequest, checkins_of, enrol
from crm_backend.followups.models import (
    EnrolmentSource,
    FollowupCheckin,
    FollowupEnrolment,
    FollowupPlan,
    FollowupPlanVersion,
    FollowupSend,
)
from crm_backend.followups.plans import PlanDefinition
from crm_backend.patients.models import Patient, PatientLink, WeChatIdentity
from crm_backend.runtime import Runtime
from crm_backend.staff.models import Team

_serial = itertools.count(1)


def local(day: date, hh: int, mm: int = 0) -> datetime:
    """A hospital-local time (Asia/Shanghai)."""
    return datetime.combine(day, time(hh, mm), tzinfo=HOSPITAL_TZ)


def definition(
    code: str,
    days: tuple[int, ...] = (1, 3, 7),
    hour: int = 10,
    procedures: list[dict[str, Any]] | None = None,
    anchor: str = "discharge",
) -> PlanDefinition:
    """A small plan: one pain question per time point."""
    question = {
        "code": "pain",
        "text": "现在伤口疼痛有几分？（0 不痛，10 最痛）",
        "type": "scale",
        "flags": [{"flag": "amber", "at_least": 4}, {"flag": "red", "at_least": 7}],
    }
    return PlanDefinition.model_validate(
        {
            "code": code,
            "name": f"测试随访计划 {code}",
            "anchor": anchor,
            "procedures": procedures or [{"text": f"测试手术{code}"}],
            "time_points": [
                {"day": d, "hour": hour, "questionnaire": {"questions": [question]}} for d in days
            ],
        }
    )


async def make_plan(runtime: Runtime, plan: PlanDefinition, version: int = 1) -> FollowupPlanVersion:
    async with runtime.db.sessions() as session:
        row = await session.scalar(select(FollowupPlan).where(FollowupPlan.code == plan.code))
        if row is None:
            row = FollowupPlan(code=plan.code, name=plan.name)
            session.add(row)
            await session.flush()
        stored = FollowupPlanVersion(plan_id=row.id, version=version, definition=plan.model_dump(mode="json"))
        session.add(stored)
        await session.commit()
        return stored


def unique_code(prefix: str = "p") -> str:
    return f"{prefix}{next(_serial)}"


async def make_team(runtime: Runtime, name: str | None = None) -> int:
    async with runtime.db.sessions() as session:
        team = await session.scalar(select(Team).where(Team.name == name)) if name else None
        if team is None:
            team = Team(name=name or f"病区{next(_serial)}")
            session.add(team)
            await session.commit()
        return team.id


async def make_patient(
    runtime: Runtime,
    *,
    name: str | None = None,
    own_identity: bool = True,
    last_inbound_at: datetime | None = None,
    subscribed: bool = True,
    family: bool = False,
    consented: bool = True,
) -> tuple[int, int | None]:
    """A patient, with their own WeChat identity or one of a family member who manages them:
    (patient_id, identity_id)."""
    async with runtime.db.sessions() as session:
        patient = Patient(display_name=name or f"患者{next(_serial)}")
        session.add(patient)
        await session.flush()
        identity_id = None
        if own_identity or family:
            holder_id = patient.id
            if family:
                holder = Patient(display_name=f"家属{next(_serial)}")
                session.add(holder)
                await session.flush()
                holder_id = holder.id
            identity = WeChatIdentity(
                app_id="wx_test",
                openid=f"openid-fu-{next(_serial):06d}",
                patient_id=holder_id,
                subscribed=subscribed,
                last_inbound_at=last_inbound_at,
                created_at=datetime.now(UTC),
            )
            session.add(identity)
            await session.flush()
            identity_id = identity.id
            if consented:
                session.add(
                    ConsentRecord(
                        identity_id=identity.id, patient_id=holder_id, granted=True, notice_version="t1"
                    )
                )
            if family:
                session.add(PatientLink(identity_id=identity.id, patient_id=patient.id, relationship="child"))
        await session.commit()
        return patient.id, identity_id


async def enrol_patient(
    runtime: Runtime,
    version: FollowupPlanVersion,
    patient_id: int,
    anchor: date,
    now: datetime,
    team_id: int | None = None,
) -> int:
    """Enrol through enrolment.enrol (as the console does) at `now`; the enrolment id."""
    async with runtime.db.sessions() as session:
        enrolment = await enrol(
            session,
            EnrolmentRequest(
                patient_id=patient_id,
                plan_version_id=version.id,
                anchor_date=anchor,
                discharged_on=anchor,
                team_id=team_id or await make_team(runtime, "护理团队"),
                source=EnrolmentSource.console,
            ),
            runtime.settings,
            now,
        )
        await session.commit()
        return enrolment.id


async def checkins(runtime: Runtime, enrolment_id: int) -> list[FollowupCheckin]:
    async with runtime.db.sessions() as session:
        return await checkins_of(session, enrolment_id)


async def enrolment(runtime: Runtime, enrolment_id: int) -> FollowupEnrolment:
    async with runtime.db.sessions() as session:
        row = await session.get(FollowupEnrolment, enrolment_id)
        assert row is not None
        return row


async def dialogues(runtime: Runtime, checkin_id: int) -> list[InboundMessage]:
    """The check-in's dialogue turns (conversations/turns.py), oldest first."""
    key = f"dialogue:followup:checkin:{checkin_id}"
    async with runtime.db.sessions() as session:
        rows = await session.scalars(
            select(InboundMessage)
            .where(or_(InboundMessage.dedupe_key == key, InboundMessage.dedupe_key.like(f"{key}:%")))
            .order_by(InboundMessage.id)
        )
        return list(rows.all())


async def sends(runtime: Runtime, checkin_id: int) -> list[FollowupSend]:
    async with runtime.db.sessions() as session:
        rows = await session.scalars(
            select(FollowupSend).where(FollowupSend.checkin_id == checkin_id).order_by(FollowupSend.id)
        )
        return list(rows.all())


async def identity(runtime: Runtime, identity_id: int) -> WeChatIdentity:
    async with runtime.db.sessions() as session:
        row = await session.get(WeChatIdentity, identity_id)
        assert row is not None
        return row


_periods = itertools.count()


def fresh_day() -> date:
    """A day far from every other test's, later each time: a dispatch run at one test's time finds
    earlier tests' check-ins already past their windows, never a later test's."""
    return date(2032, 1, 5) + timedelta(days=30 * next(_periods))


async def open_to(runtime: Runtime, patient_id: int, team_id: int) -> None:
    """Make the patient one the team may open, as the console's patient search finds them: a
    conversation of theirs escalated to the team (escalations/access.py)."""
    async with runtime.db.sessions() as session:
        identity = await session.scalar(select(WeChatIdentity).where(WeChatIdentity.patient_id == patient_id))
        if identity is None:
            identity = WeChatIdentity(
                app_id="wx_test", openid=f"openid-fu-{next(_serial):06d}", patient_id=patient_id
            )
            session.add(identity)
            await session.flush()
        conversation = Conversation(patient_id=patient_id, identity_id=identity.id)
        session.add(conversation)
        await session.flush()
        session.add(
            Escalation(
                conversation_id=conversation.id,
                team_id=team_id,
                reason="test",
                sla_due_at=datetime.now(UTC),
                status="resolved",
            )
        )
        await session.commit()


async def started_in_chat(runtime: Runtime, outbox: Outbox) -> tuple[FollowupCheckin, int, int, datetime]:
    """A day-1 check-in the dispatcher started in chat at 10:00: (check-in, identity, enrolment, when)."""
    day = fresh_day()
    version = await make_plan(runtime, definition(unique_code(), days=(1, 7)))
    started = local(day + timedelta(days=1), 10)
    patient_id, identity_id = await make_patient(runtime, last_inbound_at=started - timedelta(hours=1))
    enrolment_id = await enrol_patient(runtime, version, patient_id, day, local(day, 15))
    await run_followups(outbox, started)
    day1 = (await checkins(runtime, enrolment_id))[0]
    return day1, identity_id, enrolment_id, started
