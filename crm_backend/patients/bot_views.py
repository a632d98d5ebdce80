"""The bot API for 就诊人: list who an identity books for, check typed details, and register one.

Called by the action server while the booking dialogue collects a patient's details. Answers carry
masked values only: full ID and phone numbers never travel back into Rasa's tracker.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Request, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from crm_backend.patients import validation as v
from crm_backend.patients.bot_access import BOT_API_PREFIX, BotToken, SenderIdentity
from crm_backend.patients.records import (
    ManagedPatient,
    PatientDataError,
    add_managed_patient,
    list_managed_patients,
)
from crm_backend.patients.relations import RELATION_LABELS, relation_in
from crm_backend.staff.deps import DbSession, runtime_of

router = APIRouter(prefix=BOT_API_PREFIX, tags=["bot"], dependencies=[BotToken])

Field_ = Literal["name", "id_number", "phone", "relationship"]


class BotPatientRead(BaseModel):
    """A 就诊人 as the dialogue shows it: name and relationship, nothing sensitive."""

    id: int
    name: str | None
    relationship: str
    label: str


class BotPatientsRead(BaseModel):
    patients: list[BotPatientRead]


class RegisteredRead(BaseModel):
    patient: BotPatientRead


class FieldCheckRead(BaseModel):
    ok: bool
    #: The detail normalised (an ID number in capitals, a phone without spaces) when it is fine.
    value: str | None
    #: What to fix, in the patient's words, when it is not.
    message: str | None


def bot_patient(patient: ManagedPatient) -> BotPatientRead:
    relation = RELATION_LABELS[patient.relationship]
    name = patient.name or "未填写姓名"
    return BotPatientRead(
        id=patient.patient_id,
        name=patient.name,
        relationship=patient.relationship.value,
        label=f"{name}（{relation}）",
    )


@router.get("/patients")
async def list_patients(request: Request, session: DbSession, identity: SenderIdentity) -> BotPatientsRead:
    patients = await list_managed_patients(session, runtime_of(request).protector, identity)
    return BotPatientsRead(patients=[bot_patient(p) for p in patients])


class FieldCheck(BaseModel):
    field: Field_
    value: Annotated[str, Field(max_length=256)]


def _check(field: Field_, value: str) -> tuple[str | None, str | None]:
    """(normalised value, None) when fine, else (None, what to fix in Chinese)."""
    text = value.strip()
    if field == "name":
        return (text, None) if v.check_name(text) is None else (None, v.MSG_NAME)
    if field == "id_number":
        number = v.normalise_id_number(text)
        problem = v.check_resident_id(number)
        return (number, None) if problem is None else (None, problem)
    if field == "phone":
        phone = v.normalise_phone(text)
        problem = v.check_mobile_phone(phone)
        return (phone, None) if problem is None else (None, problem)
    relation = relation_in(text)
    if relation is None:
        return None, "请告诉我就诊人是您的什么人：本人、子女、父母、配偶或其他亲友。"
    return relation.value, None


@router.post("/patients/check")
async def check_field(body: FieldCheck, identity: SenderIdentity) -> FieldCheckRead:
    """Check one detail as the patient typed it, so the dialogue can say what is wrong at once."""
    value, problem = _check(body.field, body.value)
    return FieldCheckRead(ok=problem is None, value=value, message=problem)


class NewPatient(BaseModel):
    relationship: Annotated[str, Field(max_length=16)]
    name: Annotated[str, Field(max_length=64)]
    id_number: Annotated[str, Field(max_length=32)]
    phone: Annotated[str, Field(max_length=32)]


@router.post("/patients", status_code=status.HTTP_201_CREATED, response_model=None)
async def register_patient(
    body: NewPatient, request: Request, session: DbSession, identity: SenderIdentity
) -> RegisteredRead | JSONResponse:
    """Register (or link, when already on file under the same name) a 就诊人 for this identity."""
    try:
        patient = await add_managed_patient(
            session,
            runtime_of(request).protector,
            identity,
            body.relationship,
            name=body.name,
            sex=None,
            birth_date=None,
            phone=body.phone,
            id_number=body.id_number,
        )
    except PatientDataError as exc:
        await session.rollback()
        return JSONResponse({"message": exc.message}, status_code=422)
    await session.commit()
    return RegisteredRead(patient=bot_patient(patient))
