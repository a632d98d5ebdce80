"""The bot API for complaints and praise: the intake's media mark, registering a confirmed record,
the sender's cases, adding to an open one, and the reply to the hospital's answer.

Called by the action server (bot/dialogs/complaints*.py) under /internal/bot/complaints, with the
bot token and `?sender=` like every bot view. A case belongs to the WeChat identity's own patient
record (the complainant: a family member writing for a parent complains as themselves); another
account's case is 404, as a wrong number is.

Images never reach Rasa: the route acknowledges them and stores them as messages. An intake (or an
addition) starts by asking for `media_after`, the identity's latest stored message; the patient's
images stored after it are attached when the record is registered (or the addition is made). The
patient lock orders a patient's turns, so an image sent after the intake began is stored after the
mark, and one sent before it is not.

A safety risk (safety.py) is not escalated from inside this request: the request runs inside the
patient's Rasa turn, and an escalation pauses that same tracker and hands the chat to staff while
the worker is still recording the turn. The answer carries the escalation instead, which the bot
sends as its {"escalate": ...} instruction, and the worker raises it right after the turn (urgent,
complaints office); the case is marked escalated in the same transaction as its registration.
"""

from __future__ import annotations

import logging
from datetime import date, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Request, status
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_backend.appointments.models import Department
from crm_backend.appointments.understanding import department_in
from crm_backend.complaints import safety
from crm_backend.complaints.deadlines import ONE_DEPARTMENT_DAYS
from crm_backend.complaints.intake_words import day_of, ward_of
from crm_backend.complaints.models import INTAKE_KEY_CHARS, CaseKind, Complaint
from crm_backend.complaints.service import (
    BOT,
    SAFETY_REASON,
    CaseStatusRead,
    ComplaintError,
    ComplaintIntake,
    MediaInfo,
    add_to_case,
    cases_of_patient,
    note_safety_escalation,
    record_outcome_reply,
    register_case,
    safety_summary,
)
from crm_backend.config import HOSPITAL_TZ
from crm_backend.conversations.models import Conversation, Direction, Message
from crm_backend.patients.bot_access import BOT_API_PREFIX, BotToken, SenderIdentity
from crm_backend.patients.models import WeChatIdentity
from crm_backend.staff.deps import DbSession, runtime_of

log = logging.getLogger(__name__)

router = APIRouter(prefix=f"{BOT_API_PREFIX}/complaints", tags=["bot"], dependencies=[BotToken])

#: At most this many of the patient's images are attached to one intake or addition.
MAX_MEDIA = 20

Part = Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)]
IntakeKey = Annotated[str, StringConstraints(min_length=1, max_length=INTAKE_KEY_CHARS)]
CaseNumber = Annotated[str, StringConstraints(strip_whitespace=True, min_length=4, max_length=24)]


class MediaMark(BaseModel):
    #: The sender's latest stored message id (0: none yet); images after it belong to this intake.
    media_after: int


class IntakeBody(BaseModel):
    """The record the patient confirmed, in their own words (the bot's slots)."""

    model_config = ConfigDict(extra="forbid")

    kind: CaseKind = CaseKind.complaint
    what: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000)]
    when_text: Part = ""
    where_text: Part = ""
    who: Part = ""
    wish: Part = ""
    media_after: int | None = Field(None, ge=0)
    #: The bot's key for this intake: sent again (after a timeout), the same case is answered.
    intake_key: IntakeKey | None = None


class EscalationRead(BaseModel):
    """The bot's {"escalate": {...}} instruction (conversations/processing.py turns it into one)."""

    reason: str
    priority: str
    team: str
    #: The patient's words, shown to staff on the escalation.
    summary: str | None = None


class ScreenBody(BaseModel):
    """A part of an intake the patient just gave, before any case exists."""

    model_config = ConfigDict(extra="forbid")

    text: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
    #: The intake's key (as for registration): a risk is recorded as that intake's case, once.
    intake_key: IntakeKey | None = None
    #: What the patient said earlier in this intake, and the mark after which their photos count.
    earlier: Part = ""
    media_after: int | None = Field(None, ge=0)


class ScreenRead(BaseModel):
    #: The risks found (safety_risks.yml ids) and the escalation the bot raises at once for them.
    risks: list[str]
    escalate: EscalationRead | None = None
    #: The case the risk was recorded as (the patient's words so far; staff complete it).
    case_number: str | None = None


class RegisteredRead(BaseModel):
    case_number: str
    kind: CaseKind
    #: The day by which the patient hears back, and how many working days that is.
    deadline: date
    working_days: int
    safety_risk: bool
    #: Images attached to the case.
    media: int
    escalate: EscalationRead | None = None


class CasesRead(BaseModel):
    cases: list[CaseStatusRead]


class AdditionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
    media_after: int | None = Field(None, ge=0)


class AdditionRead(BaseModel):
    case_number: str
    media: int
    #: A safety risk in the words added: escalated like one in an intake.
    escalate: EscalationRead | None = None


class OutcomeBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    accepts: bool
    satisfaction: int | None = Field(None, ge=1, le=5)


class OutcomeRead(BaseModel):
    case_number: str
    kind: CaseKind
    outcome: Literal["closed", "reopened", "kept"]


# -- what the patient sent ------------------------------------------------------------------------


async def _latest_message_id(session: AsyncSession, identity: WeChatIdentity) -> int:
    found = await session.scalar(
        select(func.max(Message.id))
        .join(Conversation, Conversation.id == Message.conversation_id)
        .where(Conversation.identity_id == identity.id)
    )
    return int(found or 0)


async def images_after(session: AsyncSession, identity: WeChatIdentity, after: int | None) -> list[MediaInfo]:
    """The patient's images stored after the mark, oldest first (none without a mark)."""
    if after is None:
        return []
    rows = await session.scalars(
        select(Message)
        .join(Conversation, Conversation.id == Message.conversation_id)
        .where(
            Conversation.identity_id == identity.id,
            Message.id > after,
            Message.direction == Direction.IN,
            Message.msg_type == "image",
        )
        .order_by(Message.id)
        .limit(MAX_MEDIA)
    )
    return [
        MediaInfo(
            msg_type="image",
            message_id=row.id,
            media_id=(row.extra or {}).get("media_id"),
            url=(row.extra or {}).get("pic_url"),
        )
        for row in rows
    ]


async def _conversation_id(session: AsyncSession, identity: WeChatIdentity) -> int | None:
    """The sender's latest conversation: the one this intake happens in (never changed here)."""
    return await session.scalar(
        select(Conversation.id)
        .where(Conversation.identity_id == identity.id)
        .order_by(Conversation.id.desc())
    )


async def intake_of(
    session: AsyncSession, body: IntakeBody, media: list[MediaInfo], now: datetime
) -> ComplaintIntake:
    """The service's intake: the patient's words, plus the day, department and ward read from them
    and whether it is a safety risk."""
    departments = list(await session.scalars(select(Department)))
    where = body.where_text
    department = department_in(where, departments) or department_in(body.what, departments)
    found = safety.assess(body.what, body.who, body.wish, body.where_text)
    if found.safety_risk:
        log.info("complaint intake: safety risks %s (phrases %s)", ",".join(found.risks), found.version)
    return ComplaintIntake(
        kind=body.kind,
        what=body.what,
        when_text=body.when_text[:200],
        when_date=day_of(body.when_text, now.astimezone(HOSPITAL_TZ).date()),
        where_department=department.name if department else (where[:64] or None),
        where_ward=ward_of(where),
        who=body.who[:100] or None,
        wish=body.wish or None,
        safety_risk=found.safety_risk,
        attachments=media,
        intake_key=body.intake_key or None,
    )


async def _escalation_owed(
    session: AsyncSession,
    complaint: Complaint,
    conversation_id: int | None,
    now: datetime,
    *,
    words: str | None = None,
) -> EscalationRead | None:
    """A safety risk (the case's, or one in the `words` the patient added): the case marked escalated
    in this transaction, raised by the worker after the turn with the patient's words."""
    if conversation_id is None or not (complaint.safety_risk or words):
        return None  # no chat to raise it in: the service's deadline job escalates what is owed
    # Answered again when a retried registration finds its case: the first answer may never have
    # reached the bot, and raising an escalation that is open already changes nothing.
    await note_safety_escalation(session, complaint, conversation_id, now=now, words=words)
    return _safety_escalation(safety_summary(words or complaint.what, complaint.case_number))


def _safety_escalation(summary: str) -> EscalationRead:
    return EscalationRead(reason=SAFETY_REASON, priority="urgent", team="complaints", summary=summary)


def _refused(error: ComplaintError) -> HTTPException:
    return HTTPException(error.status_code, str(error))


async def _register_from_chat(
    session: AsyncSession, identity: WeChatIdentity, intake: ComplaintIntake, now: datetime
) -> tuple[Complaint, EscalationRead | None]:
    """Register (or find, by the intake's key) the sender's case and commit, with the escalation
    the bot raises for a safety risk."""
    conversation_id = await _conversation_id(session, identity)
    try:
        complaint = await register_case(session, identity.patient_id, conversation_id, intake, BOT, now=now)
    except ComplaintError as error:
        await session.rollback()
        raise _refused(error) from error
    escalate = await _escalation_owed(session, complaint, conversation_id, now)
    await session.commit()
    return complaint, escalate


# -- the endpoints ----------------------------------------------------------------------------------


@router.post("/intake", response_model=MediaMark)
async def start_intake(session: DbSession, identity: SenderIdentity) -> MediaMark:
    """An intake or an addition starts: images stored from now on belong to it."""
    return MediaMark(media_after=await _latest_message_id(session, identity))


@router.post("/screen", response_model=ScreenRead)
async def screen(
    body: ScreenBody, request: Request, session: DbSession, identity: SenderIdentity
) -> ScreenRead:
    """A part of an intake, read for safety risks as soon as the patient gave it: a risk is
    recorded as a case with their words and escalated at once, whether or not they ever confirm
    the record (staff take the rest of the complaint down)."""
    found = safety.assess(body.text)
    if not found.safety_risk:
        return ScreenRead(risks=[])
    now = runtime_of(request).clock()
    words = f"{body.earlier}\n{body.text}" if body.earlier else body.text
    media = await images_after(session, identity, body.media_after)
    intake = ComplaintIntake(what=words, safety_risk=True, attachments=media, intake_key=body.intake_key)
    complaint, escalate = await _register_from_chat(session, identity, intake, now)
    log.info(
        "complaint intake: safety risks %s recorded as %s before confirmation (phrases %s)",
        found.risks,
        complaint.case_number,
        found.version,
    )
    return ScreenRead(
        risks=list(found.risks),
        escalate=escalate or _safety_escalation(safety_summary(body.text, complaint.case_number)),
        case_number=complaint.case_number,
    )


@router.post("", response_model=RegisteredRead)
async def register(
    body: IntakeBody, request: Request, session: DbSession, identity: SenderIdentity
) -> RegisteredRead:
    """The confirmed record becomes a case: its number, deadline and, for a safety risk, the
    escalation the bot raises."""
    now = runtime_of(request).clock()
    media = await images_after(session, identity, body.media_after)
    intake = await intake_of(session, body, media, now)
    complaint, escalate = await _register_from_chat(session, identity, intake, now)
    log.info("case %s registered from chat (%d images)", complaint.case_number, len(media))
    return RegisteredRead(
        case_number=complaint.case_number,
        kind=CaseKind(complaint.kind),
        deadline=complaint.due_on,
        working_days=ONE_DEPARTMENT_DAYS,
        safety_risk=complaint.safety_risk,
        media=len(media),
        escalate=escalate,
    )


@router.get("", response_model=CasesRead)
async def cases(session: DbSession, identity: SenderIdentity) -> CasesRead:
    """The sender's cases, newest first ("我的投诉怎么样了")."""
    return CasesRead(cases=await cases_of_patient(session, identity.patient_id))


@router.get("/{case_number}", response_model=CaseStatusRead)
async def case(case_number: CaseNumber, session: DbSession, identity: SenderIdentity) -> CaseStatusRead:
    wanted = case_number.upper()
    for found in await cases_of_patient(session, identity.patient_id):
        if found.case_number == wanted:
            return found
    raise HTTPException(status.HTTP_404_NOT_FOUND, "not one of this account's cases")


@router.post("/{case_number}/additions", response_model=AdditionRead)
async def add(
    case_number: CaseNumber,
    body: AdditionBody,
    request: Request,
    session: DbSession,
    identity: SenderIdentity,
) -> AdditionRead:
    """Words, then each image sent since the mark, on the open case's timeline."""
    now = runtime_of(request).clock()
    media = await images_after(session, identity, body.media_after)
    try:
        entry = await add_to_case(session, case_number, identity.patient_id, body.text, None, now=now)
        for image in media:
            await add_to_case(session, case_number, identity.patient_id, None, image, now=now)
    except ComplaintError as error:
        await session.rollback()
        raise _refused(error) from error
    complaint = await session.get(Complaint, entry.complaint_id)
    assert complaint is not None
    escalate = None
    if entry.data and entry.data.get("safety_risks"):
        log.info("case %s: safety risks %s in an addition", complaint.case_number, entry.data["safety_risks"])
        conversation_id = await _conversation_id(session, identity)
        escalate = await _escalation_owed(session, complaint, conversation_id, now, words=body.text)
    number = complaint.case_number
    await session.commit()
    return AdditionRead(case_number=number, media=len(media), escalate=escalate)


@router.post("/{case_number}/outcome", response_model=OutcomeRead)
async def outcome(
    case_number: CaseNumber, body: OutcomeBody, request: Request, session: DbSession, identity: SenderIdentity
) -> OutcomeRead:
    """Accepted (closed) or not (reopened within the reopening window), with the satisfaction."""
    runtime = runtime_of(request)
    try:
        reply = await record_outcome_reply(
            session,
            case_number,
            identity.patient_id,
            body.accepts,
            body.satisfaction,
            reopen_days=runtime.settings.complaint_reopen_days,
            now=runtime.clock(),
        )
    except ComplaintError as error:
        await session.rollback()
        raise _refused(error) from error
    kind = await session.scalar(select(Complaint.kind).where(Complaint.case_number == reply.case_number))
    await session.commit()
    return OutcomeRead(case_number=reply.case_number, kind=CaseKind(kind), outcome=reply.outcome)
