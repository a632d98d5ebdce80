"""Complaint and praise cases: registering one with its number and deadline, the states it moves
through, what the patient adds and how they take the answer.

Every function takes the caller's session and leaves the commit to it (a bot view or a console view
commits once, so a case and its first timeline entry exist together or not at all). The one effect
outside the database, the urgent escalation of a safety risk, needs the commit first: `register`
does both, and `escalate_safety` is safe to call again (the deadline job retries one still owed).

States (docs/ARCHITECTURE.md, "Complaints"): registered → assigned → investigating → answered →
closed; reopened (the patient does not accept the answer within COMPLAINT_REOPEN_DAYS) goes back
to work, and referred (mediation, appraisal, lawsuit) ends the hospital's own handling. A change
that is not allowed raises `InvalidTransition` and changes nothing.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StringConstraints
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from crm_backend.complaints import safety
from crm_backend.complaints.deadlines import deadline_for
from crm_backend.complaints.models import (
    INTAKE_KEY_CHARS,
    CaseKind,
    CaseStatus,
    Category,
    Complaint,
    ComplaintTimelineEntry,
    TimelineKind,
)
from crm_backend.config import HOSPITAL_TZ, get_settings
from crm_backend.conversations.events import EscalationRequested
from crm_backend.conversations.models import Conversation
from crm_backend.conversations.service import current_conversation
from crm_backend.patients.models import PatientLink, WeChatIdentity
from crm_backend.runtime import Runtime

log = logging.getLogger(__name__)

#: Case number prefixes: 投诉 and 表扬.
PREFIX = {CaseKind.complaint: "TS", CaseKind.praise: "BY"}
#: Who registered a case from the chat.
BOT = "bot"
#: The escalation reason of a safety risk (the console's labels.js says it in words).
SAFETY_REASON = "complaint_safety"
#: The timeline's words for it.
SAFETY_ESCALATED = "安全风险：已紧急转交投诉办公室"
#: Cases the patient may still add to.
OPEN_STATUSES = frozenset(
    {CaseStatus.registered, CaseStatus.assigned, CaseStatus.investigating, CaseStatus.reopened}
)
#: Where each state may go. Closing a case straight from registered is for praise only (thanked and
#: passed on); an answer may come at once when the matter was settled on the spot.
TRANSITIONS: dict[CaseStatus, frozenset[CaseStatus]] = {
    CaseStatus.registered: frozenset(
        {CaseStatus.assigned, CaseStatus.answered, CaseStatus.referred, CaseStatus.closed}
    ),
    CaseStatus.assigned: frozenset(
        {CaseStatus.assigned, CaseStatus.investigating, CaseStatus.answered, CaseStatus.referred}
    ),
    CaseStatus.investigating: frozenset({CaseStatus.assigned, CaseStatus.answered, CaseStatus.referred}),
    CaseStatus.answered: frozenset({CaseStatus.closed, CaseStatus.reopened, CaseStatus.referred}),
    CaseStatus.reopened: frozenset(
        {CaseStatus.assigned, CaseStatus.investigating, CaseStatus.answered, CaseStatus.referred}
    ),
    CaseStatus.closed: frozenset(),
    CaseStatus.referred: frozenset(),
}
#: What the patient reads for each state ("我的投诉怎么样了").
STATUS_TEXT = {
    CaseStatus.registered: "已登记，等待分派",
    CaseStatus.assigned: "已转交相关科室",
    CaseStatus.investigating: "正在调查核实",
    CaseStatus.answered: "已答复，等待您的确认",
    CaseStatus.closed: "已办结",
    CaseStatus.reopened: "已重新处理",
    CaseStatus.referred: "已转入调解、鉴定或诉讼程序",
}

ShortText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=64)]


class ComplaintError(Exception):
    """A request about a case that cannot be met; `status_code` is what the API answers."""

    status_code = 409


class CaseNotFound(ComplaintError, LookupError):
    status_code = 404


class CaseClosed(ComplaintError):
    """The case no longer takes additions (answered, closed or referred)."""


class InvalidTransition(ComplaintError):
    def __init__(self, case_number: str, current: CaseStatus, wanted: CaseStatus, why: str = "") -> None:
        self.current = current
        self.wanted = wanted
        super().__init__(why or f"case {case_number} is {current.value}: it cannot become {wanted.value}")


class WrongConversation(ComplaintError):
    status_code = 422


class ReplyNotExpected(ComplaintError):
    """The patient replied to an answer that was not given (or was already replied to)."""


# -- what the bot and the console send ----------------------------------------------------------


class MediaInfo(BaseModel):
    """A picture (or other media) the patient sent, as the stored message has it."""

    msg_type: Literal["image", "voice", "video", "shortvideo", "file"] = "image"
    #: The stored patient message it came in (conversations.models.Message).
    message_id: int | None = None
    media_id: str | None = Field(None, max_length=256)
    url: str | None = Field(None, max_length=1024)


class ComplaintIntake(BaseModel):
    """What the patient told the bot (or staff), read back to them and confirmed."""

    kind: CaseKind = CaseKind.complaint
    what: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000)]
    #: The patient's own words for when ("上周三下午").
    when_text: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] = ""
    when_date: date | None = None
    where_department: ShortText | None = None
    where_ward: ShortText | None = None
    who: Annotated[str, StringConstraints(strip_whitespace=True, max_length=100)] | None = None
    wish: Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)] | None = None
    safety_risk: bool = False
    #: Pictures sent during intake.
    attachments: list[MediaInfo] = Field(default_factory=list, max_length=20)
    #: The chat intake's key: registering the same intake again returns its case.
    intake_key: Annotated[str, StringConstraints(max_length=INTAKE_KEY_CHARS)] | None = None


class CaseStatusRead(BaseModel):
    """A case as the patient hears about it."""

    case_number: str
    kind: CaseKind
    status: CaseStatus
    status_text: str
    registered_at: datetime
    due_on: date
    answered_at: datetime | None
    answer: str | None
    #: The patient may still add information or pictures.
    open: bool


class OutcomeReplyRead(BaseModel):
    case_number: str
    #: closed (accepted), reopened (not accepted in time) or kept (not accepted too late: the case
    #: stays closed, the disagreement is on the timeline for the office).
    outcome: Literal["closed", "reopened", "kept"]
    status: CaseStatus


# -- registering ---------------------------------------------------------------------------------------


async def _next_number(session: AsyncSession, kind: CaseKind, day: date) -> str:
    prefix = f"{PREFIX[kind]}-{day:%Y%m%d}-"
    last = await session.scalar(
        select(Complaint.case_number)
        .where(Complaint.case_number.like(f"{prefix}%"))
        .order_by(func.length(Complaint.case_number).desc(), Complaint.case_number.desc())
        .limit(1)
    )
    serial = int(last.rsplit("-", 1)[1]) + 1 if last else 1
    return f"{prefix}{serial:04d}"


def add_entry(
    session: AsyncSession,
    complaint: Complaint,
    kind: TimelineKind,
    actor: str,
    *,
    at: datetime | None = None,
    staff_id: int | None = None,
    text: str | None = None,
    from_status: CaseStatus | None = None,
    to_status: CaseStatus | None = None,
    data: dict[str, Any] | None = None,
) -> ComplaintTimelineEntry:
    """One line on the case's timeline, in the caller's transaction."""
    entry = ComplaintTimelineEntry(
        complaint_id=complaint.id,
        at=at or datetime.now(UTC),
        kind=kind,
        actor=actor,
        staff_id=staff_id,
        text=text,
        from_status=from_status.value if from_status else None,
        to_status=to_status.value if to_status else None,
        data=data,
    )
    session.add(entry)
    return entry


async def _add_the_rest(
    session: AsyncSession, complaint: Complaint, intake: ComplaintIntake, now: datetime
) -> None:
    """A second registration of one intake: the same record adds nothing (a retry); a fuller one
    (confirmed after a safety screen recorded the first words) is kept as the patient's addition,
    with photos not attached yet."""
    added = (
        await session.execute(
            select(ComplaintTimelineEntry.text, ComplaintTimelineEntry.data).where(
                ComplaintTimelineEntry.complaint_id == complaint.id,
                ComplaintTimelineEntry.kind == TimelineKind.patient_added,
            )
        )
    ).all()
    if intake.what != complaint.what or intake.when_text != complaint.when_text:
        parts = [
            ("经过", intake.what),
            ("时间", intake.when_text),
            ("地点", " ".join(filter(None, (intake.where_department, intake.where_ward)))),
            ("涉及人员", intake.who or ""),
            ("诉求", intake.wish or ""),
        ]
        record = "\n".join(f"{label}：{value}" for label, value in parts if value)
        if record not in {text for text, _ in added}:
            add_entry(session, complaint, TimelineKind.patient_added, "patient", at=now, text=record)
    known = {data.get("message_id") for _, data in added if data}
    _attach(session, complaint, [m for m in intake.attachments if m.message_id not in known], now)
    await session.flush()


def _attach(session: AsyncSession, complaint: Complaint, media: list[MediaInfo], now: datetime) -> None:
    for one in media:
        add_entry(session, complaint, TimelineKind.patient_added, "patient", at=now, data=one.model_dump())


async def _speaks_for(session: AsyncSession, conversation: Conversation, patient_id: int) -> bool:
    """The chat is the patient's own, or of a WeChat account that manages them (就诊人)."""
    if conversation.patient_id == patient_id:
        return True
    link = await session.scalar(
        select(PatientLink.identity_id).where(
            PatientLink.identity_id == conversation.identity_id, PatientLink.patient_id == patient_id
        )
    )
    return link is not None


async def register_case(
    session: AsyncSession,
    patient_id: int,
    conversation_id: int | None,
    intake: ComplaintIntake,
    registered_by: str,
    *,
    registered_by_staff_id: int | None = None,
    several_departments: bool = False,
    now: datetime | None = None,
) -> Complaint:
    """A new case with its number and deadline, and its first timeline entries (flushed, not
    committed). A safety risk still needs `escalate_safety` after the commit (or use `register`).
    `several_departments` (staff who know it at once) counts the longer deadline from the start.

    An intake registered already (its `intake_key`: the bot tried again after a timeout while the
    first registration committed, or a safety screen recorded it first) returns that case; what
    this intake says beyond it (the confirmed record, photos) is added to its timeline.
    """
    now = now or datetime.now(UTC)
    registered = await _registered_intake(session, patient_id, intake.intake_key)
    if registered is not None:
        await _add_the_rest(session, registered, intake, now)
        return registered
    identity_id = None
    if conversation_id is not None:
        conversation = await session.get(Conversation, conversation_id)
        if conversation is None:
            raise CaseNotFound(f"no conversation {conversation_id}")
        if not await _speaks_for(session, conversation, patient_id):
            # The answer and progress messages go to that chat: never to another family's.
            raise WrongConversation(
                f"conversation {conversation_id} is not the patient's own nor of an account managing them"
            )
        identity_id = conversation.identity_id
    else:
        identity_id = await session.scalar(
            select(WeChatIdentity.id)
            .where(WeChatIdentity.patient_id == patient_id)
            .order_by(WeChatIdentity.id)
            .limit(1)
        )
    deadline = deadline_for(now, several_departments)
    if not deadline.official_calendar:
        log.warning(
            "case of patient %s: deadline %s counted without the official calendar",
            patient_id,
            deadline.due_on,
        )
    day = now.astimezone(HOSPITAL_TZ).date()
    for _ in range(20):
        complaint = Complaint(
            case_number=await _next_number(session, intake.kind, day),
            kind=intake.kind,
            status=CaseStatus.registered,
            patient_id=patient_id,
            conversation_id=conversation_id,
            identity_id=identity_id,
            what=intake.what,
            when_text=intake.when_text,
            when_date=intake.when_date,
            where_department=intake.where_department,
            where_ward=intake.where_ward,
            who=intake.who,
            wish=intake.wish,
            several_departments=several_departments,
            safety_risk=intake.safety_risk,
            category=Category.safety if intake.safety_risk else None,
            registered_by=registered_by[:64],
            registered_by_staff_id=registered_by_staff_id,
            registered_at=now,
            due_on=deadline.due_on,
            due_at=deadline.due_at,
            nearing_at=deadline.nearing_at,
            official_calendar=deadline.official_calendar,
            updated_at=now,
            intake_key=intake.intake_key,
        )
        try:
            async with session.begin_nested():
                session.add(complaint)
                await session.flush()
            break
        except IntegrityError:  # the number was taken a moment ago, or this very intake registered
            registered = await _registered_intake(session, patient_id, intake.intake_key)
            if registered is not None:
                return registered
            continue
    else:
        raise RuntimeError(f"no free case number on {day}")
    add_entry(
        session,
        complaint,
        TimelineKind.registered,
        registered_by[:64],
        at=now,
        staff_id=registered_by_staff_id,
        to_status=CaseStatus.registered,
        data={
            "due_on": deadline.due_on.isoformat(),
            "working_days": deadline.working_days,
            "official_calendar": deadline.official_calendar,
        },
    )
    _attach(session, complaint, intake.attachments, now)
    await session.flush()
    log.info("case %s registered by %s (due %s)", complaint.case_number, registered_by, deadline.due_on)
    return complaint


async def _registered_intake(session: AsyncSession, patient_id: int, key: str | None) -> Complaint | None:
    """The case this intake registered already, if any (keys hold the Rasa sender, so another
    patient's key is refused rather than answered)."""
    if key is None:
        return None
    complaint = await session.scalar(select(Complaint).where(Complaint.intake_key == key))
    if complaint is not None and complaint.patient_id != patient_id:
        raise ComplaintError(f"intake key {key!r} belongs to another patient's case")
    if complaint is not None:
        log.info("case %s: intake %s registered already", complaint.case_number, key)
    return complaint


async def register(
    runtime: Runtime,
    patient_id: int,
    conversation_id: int | None,
    intake: ComplaintIntake,
    registered_by: str,
    *,
    registered_by_staff_id: int | None = None,
) -> Complaint:
    """Register, commit, then raise the urgent escalation a safety risk needs."""
    async with runtime.db.sessions() as session:
        complaint = await register_case(
            session,
            patient_id,
            conversation_id,
            intake,
            registered_by,
            registered_by_staff_id=registered_by_staff_id,
            now=runtime.clock(),
        )
        await session.commit()
    if complaint.safety_risk:
        await escalate_safety(runtime, complaint.id)
    return complaint


async def escalate_safety(runtime: Runtime, complaint_id: int) -> bool:
    """Publish the urgent escalation of a safety risk once it is committed; True when raised now.

    The escalation goes to the conversation the case came from, else the complainant's current
    one. A failure leaves `safety_escalated_at` empty and the deadline job tries again.
    """
    async with runtime.db.sessions() as session:
        complaint = await session.get(Complaint, complaint_id)
        if complaint is None or not complaint.safety_risk or complaint.safety_escalated_at is not None:
            return False
        conversation_id = complaint.conversation_id
        if conversation_id is None and complaint.identity_id is not None:
            identity = await session.get(WeChatIdentity, complaint.identity_id)
            assert identity is not None
            conversation_id = (await current_conversation(session, identity, runtime.clock())).id
            await session.commit()
        case_number, what = complaint.case_number, complaint.what
    if conversation_id is None:
        log.warning("case %s: safety risk with no WeChat conversation to escalate", case_number)
    else:
        await runtime.events.publish(
            EscalationRequested(
                conversation_id=conversation_id,
                reason=SAFETY_REASON,
                priority="urgent",
                team="complaints",
                summary=safety_summary(what, case_number),
            )
        )
    async with runtime.db.sessions() as session:
        complaint = await session.get(Complaint, complaint_id)
        assert complaint is not None
        await note_safety_escalation(session, complaint, conversation_id, now=runtime.clock())
        await session.commit()
    log.info("case %s: safety risk escalated (conversation %s)", case_number, conversation_id)
    return True


def safety_summary(words: str, case_number: str | None = None) -> str:
    """The patient's words as the escalation shows them to staff, with the case when there is one."""
    return f"{case_number}：{words}" if case_number else words


async def note_safety_escalation(
    session: AsyncSession,
    complaint: Complaint,
    conversation_id: int | None,
    *,
    now: datetime,
    words: str | None = None,
) -> bool:
    """The case's urgent escalation for a safety risk on its timeline, in the caller's transaction.

    The first one marks the case (`safety_escalated_at`, by a guarded update, so a chat and the
    deadline job racing write one entry). Later `words` (a risk in what the patient added) are
    escalated again and get an entry of their own. False when there was nothing to note.
    """
    first = await session.execute(
        update(Complaint)
        .where(Complaint.id == complaint.id, Complaint.safety_escalated_at.is_(None))
        .values(safety_escalated_at=now, safety_risk=True)
        .execution_options(synchronize_session=False)
    )
    marked = first.rowcount == 1  # type: ignore[attr-defined]
    if not marked and not words:
        return False
    if marked:
        complaint.safety_escalated_at = now
    complaint.safety_risk = True
    if complaint.category is None:
        complaint.category = Category.safety
    data: dict[str, Any] = {"conversation_id": conversation_id, "priority": "urgent"}
    if words:
        data["words"] = words
    add_entry(
        session,
        complaint,
        TimelineKind.escalated,
        "system",
        at=now,
        text=SAFETY_ESCALATED if words is None else f"{SAFETY_ESCALATED}（补充内容）",
        data=data,
    )
    return True


async def deadline_start(session: AsyncSession, complaint: Complaint) -> datetime:
    """Where the current deadline counts from: the latest reopening, else the receipt."""
    reopened = await session.scalar(
        select(func.max(ComplaintTimelineEntry.at)).where(
            ComplaintTimelineEntry.complaint_id == complaint.id,
            ComplaintTimelineEntry.to_status == CaseStatus.reopened,
        )
    )
    return reopened or complaint.registered_at


def set_deadline(complaint: Complaint, start: datetime) -> None:
    """(Re)compute the case's deadline from `start` (receipt, or a reopening) and clear its flags."""
    deadline = deadline_for(start, complaint.several_departments)
    if not deadline.official_calendar:
        log.warning(
            "case %s: deadline %s counted without the official calendar",
            complaint.case_number,
            deadline.due_on,
        )
    complaint.due_on = deadline.due_on
    complaint.due_at = deadline.due_at
    complaint.nearing_at = deadline.nearing_at
    complaint.official_calendar = deadline.official_calendar
    complaint.nearing_flagged_at = None
    complaint.overdue_flagged_at = None


# -- reading and changing a case --------------------------------------------------------------------


async def case_by_number(session: AsyncSession, case_number: str, *, for_update: bool = False) -> Complaint:
    query = select(Complaint).where(Complaint.case_number == case_number.strip().upper())
    if for_update:
        query = query.with_for_update()
    complaint = await session.scalar(query)
    if complaint is None:
        raise CaseNotFound(f"no case {case_number}")
    return complaint


async def _patients_case(session: AsyncSession, case_number: str, patient_id: int) -> Complaint:
    """The case, when it is this patient's; another patient's is as unknown as a wrong number."""
    complaint = await case_by_number(session, case_number, for_update=True)
    if complaint.patient_id != patient_id:
        raise CaseNotFound(f"no case {case_number} of patient {patient_id}")
    return complaint


async def transition(
    session: AsyncSession,
    complaint: Complaint,
    to: CaseStatus,
    actor: str,
    *,
    staff_id: int | None = None,
    text: str | None = None,
    data: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> ComplaintTimelineEntry:
    """Move the case to `to` with a timeline entry; `InvalidTransition` (and nothing changed) when the
    state machine does not allow it, or another request moved the case meanwhile."""
    now = now or datetime.now(UTC)
    current = CaseStatus(complaint.status)
    if to not in TRANSITIONS[current]:
        raise InvalidTransition(complaint.case_number, current, to)
    if to is CaseStatus.closed and current is CaseStatus.registered and complaint.kind != CaseKind.praise:
        raise InvalidTransition(
            complaint.case_number, current, to, "a complaint is answered before it is closed"
        )
    moved = await session.execute(
        update(Complaint)
        .where(Complaint.id == complaint.id, Complaint.status == current)
        .values(status=to, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if moved.rowcount != 1:  # type: ignore[attr-defined]
        raise InvalidTransition(complaint.case_number, current, to, "the case changed meanwhile; reload it")
    complaint.status = to
    complaint.updated_at = now
    if to is CaseStatus.answered:
        # A new answer (the first, or after a reopening) waits for its own reply.
        complaint.answered_at = now
        if complaint.first_answered_at is None:
            complaint.first_answered_at = now
            complaint.answered_on_time = now <= complaint.due_at
        complaint.replied_at = None
        complaint.accepted = None
    if to is CaseStatus.closed:
        complaint.closed_at = now
    if to is CaseStatus.reopened:
        complaint.reopen_count += 1
    return add_entry(
        session,
        complaint,
        TimelineKind.status,
        actor,
        at=now,
        staff_id=staff_id,
        text=text,
        from_status=current,
        to_status=to,
        data=data,
    )


def _status_read(complaint: Complaint) -> CaseStatusRead:
    status = CaseStatus(complaint.status)
    return CaseStatusRead(
        case_number=complaint.case_number,
        kind=CaseKind(complaint.kind),
        status=status,
        status_text=STATUS_TEXT[status],
        registered_at=complaint.registered_at,
        due_on=complaint.due_on,
        answered_at=complaint.answered_at,
        answer=complaint.answer if status in (CaseStatus.answered, CaseStatus.closed) else None,
        open=status in OPEN_STATUSES,
    )


async def cases_of_patient(session: AsyncSession, patient_id: int) -> list[CaseStatusRead]:
    """The patient's cases, newest first ("我的投诉怎么样了")."""
    rows = await session.scalars(
        select(Complaint)
        .where(Complaint.patient_id == patient_id)
        .order_by(Complaint.registered_at.desc(), Complaint.id.desc())
    )
    return [_status_read(row) for row in rows]


async def add_to_case(
    session: AsyncSession,
    case_number: str,
    patient_id: int,
    text: str | None,
    media: MediaInfo | None,
    *,
    now: datetime | None = None,
) -> ComplaintTimelineEntry:
    """The patient adds words or a picture to an open case; `CaseClosed` once it was answered.

    Words are screened for safety risks as an intake is: the entry's data names those found
    (`safety_risks`), which the caller escalates (`note_safety_escalation`, then the escalation).
    """
    if not (text and text.strip()) and media is None:
        raise ComplaintError("nothing to add")
    complaint = await _patients_case(session, case_number, patient_id)
    if complaint.status not in OPEN_STATUSES:
        raise CaseClosed(f"case {complaint.case_number} is {complaint.status}: it takes no more additions")
    data = media.model_dump() if media else None
    found = safety.assess(text)
    if found.safety_risk:
        data = {"safety_risks": list(found.risks), "safety_version": found.version}
    entry = add_entry(
        session,
        complaint,
        TimelineKind.patient_added,
        "patient",
        at=now,
        text=text.strip()[:4000] if text else None,
        data=data,
    )
    complaint.updated_at = entry.at
    await session.flush()
    return entry


async def record_outcome_reply(
    session: AsyncSession,
    case_number: str,
    patient_id: int,
    accepts: bool,
    satisfaction: int | None,
    *,
    reopen_days: int | None = None,
    now: datetime | None = None,
) -> OutcomeReplyRead:
    """The patient's reply to the answer: accepts → closed; does not accept within
    COMPLAINT_REOPEN_DAYS of the answer → reopened; later than that the case stays as it is and the
    disagreement is on the timeline. Satisfaction (1–5) is kept either way."""
    if satisfaction is not None and not 1 <= satisfaction <= 5:
        raise ComplaintError("satisfaction is 1 to 5")
    now = now or datetime.now(UTC)
    days = reopen_days if reopen_days is not None else get_settings().complaint_reopen_days
    complaint = await _patients_case(session, case_number, patient_id)
    status = CaseStatus(complaint.status)
    if complaint.answered_at is None or complaint.replied_at is not None:
        raise ReplyNotExpected(f"case {complaint.case_number} has no answer waiting for a reply")
    within = now <= complaint.answered_at + timedelta(days=days)
    reply = {"accepts": accepts, "satisfaction": satisfaction, "within_window": within}
    text = "患者接受处理结果" if accepts else "患者不接受处理结果"
    if status is CaseStatus.answered and accepts:
        await transition(session, complaint, CaseStatus.closed, "patient", text=text, data=reply, now=now)
        outcome = "closed"
    elif status is CaseStatus.answered and within:
        await transition(session, complaint, CaseStatus.reopened, "patient", text=text, data=reply, now=now)
        # Worked on again: a new deadline from today, flagged afresh.
        set_deadline(complaint, now)
        outcome = "reopened"
    elif status is CaseStatus.answered:
        # A disagreement after the window, before the job closed the case: closed now (the job
        # closes only cases without a reply), the disagreement on the timeline for the office.
        await transition(session, complaint, CaseStatus.closed, "patient", text=text, data=reply, now=now)
        outcome = "kept"
    elif status is CaseStatus.closed:
        # Closed after the window (no reply in time): the late reply is kept for the office.
        add_entry(session, complaint, TimelineKind.patient_reply, "patient", at=now, text=text, data=reply)
        outcome = "kept"
    else:
        raise ReplyNotExpected(f"case {complaint.case_number} is {status.value}: no answer to reply to")
    complaint.accepted = accepts
    if satisfaction is not None:
        complaint.satisfaction = satisfaction
    complaint.replied_at = now
    await session.flush()
    return OutcomeReplyRead(
        case_number=complaint.case_number, outcome=outcome, status=CaseStatus(complaint.status)
    )
