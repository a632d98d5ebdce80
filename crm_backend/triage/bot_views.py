"""The bot API for triage: `POST /internal/bot/triage`, the same decision the chat and other systems get.

The answer is exactly `TriageAnswer` (a fixed contract). When the first two departments are close
and the caller has not yet answered a clarifying question, `answer` is that one question and the
response header `X-Triage-Step: question` says so; the caller asks it and calls again with the
patient's reply as `clarification`, and then always gets a recommendation.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, StringConstraints
from sqlalchemy import select

from crm_backend.conversations.models import Conversation
from crm_backend.database.core import utcnow
from crm_backend.patients.bot_access import BOT_API_PREFIX, BotToken
from crm_backend.patients.models import Patient, PatientLink, PatientRelation, WeChatIdentity
from crm_backend.patients.service import get_identity, read_rasa_sender
from crm_backend.staff.deps import DbSession
from crm_backend.triage.decisions import BOT_API, record_decision
from crm_backend.triage.service import MAX_TEXT_CHARS, TriageAnswer, assess
from crm_backend.triage.store import hospital_departments
from crm_backend.triage.who_is_ill import people_in

router = APIRouter(prefix=BOT_API_PREFIX, tags=["bot"], dependencies=[BotToken])

STEP_HEADER = "X-Triage-Step"
#: The patient's reply to the clarifying question: short, and the caller's own words only.
MAX_CLARIFICATION_CHARS = 300
_SEX = {"M": "male", "F": "female"}

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_TEXT_CHARS)]


class TriageQuestion(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: Text
    #: The patient's answer to the clarifying question this endpoint asked about `text`.
    clarification: (
        Annotated[
            str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_CLARIFICATION_CHARS)
        ]
        | None
    ) = None


def _age(birth: date, today: date) -> int:
    return today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))


async def _identity_of(session: DbSession, sender: str | None) -> WeChatIdentity | None:
    if not sender:
        return None
    app_id, openid = read_rasa_sender(sender)
    return await get_identity(session, app_id, openid) if app_id and openid else None


async def _own_record(session: DbSession, identity: WeChatIdentity | None) -> Patient | None:
    """The sender's own patient record (就诊人 "本人"), when the sender registered it."""
    if identity is None:
        return None
    return await session.scalar(
        select(Patient)
        .join(PatientLink, PatientLink.patient_id == Patient.id)
        .where(PatientLink.identity_id == identity.id, PatientLink.relationship == PatientRelation.SELF)
    )


async def _latest_conversation(session: DbSession, identity: WeChatIdentity | None) -> int | None:
    if identity is None:
        return None
    return await session.scalar(
        select(Conversation.id)
        .where(Conversation.identity_id == identity.id)
        .order_by(Conversation.id.desc())
    )


@router.post("/triage")
async def triage(
    body: TriageQuestion, response: Response, session: DbSession, sender: str | None = None
) -> TriageAnswer:
    """Red flags first, then this hospital's departments; the sender's own age and sex count when the
    message names nobody else (not "我爸", "孩子")."""
    text = f"{body.text}。{body.clarification}" if body.clarification else body.text
    age_years = sex = None
    identity = await _identity_of(session, sender)
    me = await _own_record(session, identity)
    if not people_in(text):
        if me is not None:
            age_years = _age(me.birth_date, utcnow().date()) if me.birth_date else None
            sex = _SEX.get(me.sex or "")
    assessment = assess(
        text, departments=await hospital_departments(session) or None, age_years=age_years, sex=sex
    )
    # Every decision this API makes is kept with its versions for staff to review.
    record_decision(
        session,
        assessment,
        conversation_id=await _latest_conversation(session, identity),
        message_id=None,
        patient_id=identity.patient_id if identity is not None else None,
        source=BOT_API,
    )
    await session.commit()
    recommendation = assessment.recommendation
    if (
        recommendation is not None
        and recommendation.close
        and body.clarification is None
        and recommendation.question
    ):
        response.headers[STEP_HEADER] = "question"
        return assessment.answer.model_copy(update={"answer": recommendation.question})
    response.headers[STEP_HEADER] = "emergency" if recommendation is None else "answer"
    return assessment.answer
