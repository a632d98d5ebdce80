"""The bot API for hospital information: the hospital's own answer to a patient's question."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, StringConstraints

from crm_backend.hospital_info.service import answer_for, hospital_entries
from crm_backend.patients.bot_access import BOT_API_PREFIX, BotToken
from crm_backend.staff.deps import DbSession, runtime_of

router = APIRouter(prefix=BOT_API_PREFIX, tags=["bot"], dependencies=[BotToken])


class HospitalInfoQuestion(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]


class HospitalInfoAnswer(BaseModel):
    #: The entry that answered (opening_hours, parking, ...), or null: then `answer` gives the phone.
    topic: str | None
    answer: str


@router.post("/hospital-info")
async def hospital_info(
    body: HospitalInfoQuestion, request: Request, session: DbSession
) -> HospitalInfoAnswer:
    entries = await hospital_entries(session)
    topic, answer = answer_for(body.text, entries, runtime_of(request).settings.hospital_service_phone)
    return HospitalInfoAnswer(topic=topic, answer=answer)
