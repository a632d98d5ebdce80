"""Console endpoints for patients: search, the panel and the 360° view, masked and audited.

Every one of them opens a patient under the same rule (access.py). They read across patients,
conversations, appointments and escalations, which is why they live above all of them.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_backend.appointments.service import patient_appointments
from crm_backend.audit.refusals import AccessRefused
from crm_backend.audit.service import record as audit
from crm_backend.conversations.models import Conversation
from crm_backend.database.core import RowId
from crm_backend.escalations.views_model import PatientPanelRead, patient_panel
from crm_backend.patient_record.access import may_view
from crm_backend.patient_record.consent_state import UNANSWERED, consent_of
from crm_backend.patient_record.followups import patient_followups
from crm_backend.patient_record.models import (
    AppointmentRecordRead,
    ConversationLineRead,
    IdentityRead,
    ManagedPatientRead,
    Patient360Read,
    PatientSummaryRead,
    RevealedRead,
    RevealIn,
)
from crm_backend.patient_record.search import search_patients
from crm_backend.patients.models import Patient
from crm_backend.patients.records import (
    FULL_PHONE_ROLES,
    MASKED,
    Disclosure,
    managed_by,
    managers_of,
    patient_summary,
)
from crm_backend.protection import AesGcmProtector
from crm_backend.staff.deps import CurrentStaff, DbSession, StaffDep, runtime_of
from crm_backend.staff.models import CARE_ROLES, StaffRole

router = APIRouter(prefix="/api/console", tags=["console"])


def _protector(request: Request) -> AesGcmProtector:
    return runtime_of(request).protector


async def _open(session: AsyncSession, staff: CurrentStaff, patient_id: int, view: str) -> Patient:
    """The patient, if this staff member may see them: 404 for no such patient, else 403 (audited)
    unless one of the teams had a conversation of theirs, or of a family member managing them."""
    patient = await session.get(Patient, patient_id)
    if patient is None:
        raise HTTPException(404, "no such patient")
    if not await may_view(session, staff, patient_id):
        raise AccessRefused(
            "this patient has no conversation with your teams",
            action="patient.view",
            object_type="patient",
            object_id=patient_id,
            patient_id=patient_id,
            audit_detail={"view": view},
        )
    return patient


@router.get("/patients")
async def search(
    staff: StaffDep,
    request: Request,
    session: DbSession,
    query: Annotated[str, Query(min_length=1, max_length=64)],
) -> list[PatientSummaryRead]:
    """Name prefix, or exact phone / ID / card number; agents and nurses see only their teams' patients."""
    protector = _protector(request)
    plan, patients = await search_patients(session, protector, staff, query)
    # Masked for every role: a full value is shown only through an audited reveal.
    result = [PatientSummaryRead.model_validate(patient_summary(p, protector, MASKED)) for p in patients]
    # The query itself may be a phone or ID number: the audit log keeps only what kind it was.
    await audit(
        session,
        staff_id=staff.id,
        action="patient.search",
        object_type="patient",
        object_id="search",
        request=request,
        detail={"kinds": list(plan.kinds), "results": len(result)},
    )
    await session.commit()
    return result


@router.get("/patients/{patient_id}/360")
async def patient_360(
    patient_id: RowId, staff: StaffDep, request: Request, session: DbSession, reveal: bool = False
) -> Patient360Read:
    """Everything about one patient, masked; the full ID number only for an admin asking with
    reveal=true (other values one at a time through POST .../reveal)."""
    if reveal and staff.role != StaffRole.admin:
        raise AccessRefused(
            "only admins may reveal ID numbers",
            action="patient.reveal",
            object_type="patient",
            object_id=patient_id,
            patient_id=patient_id,
            audit_detail={"fields": ["id_number"]},
        )
    patient = await _open(session, staff, patient_id, "360")
    protector = _protector(request)
    disclosure = Disclosure(full_id_number=reveal)
    conversations = (
        await session.scalars(
            select(Conversation)
            .where(Conversation.patient_id == patient_id)
            .order_by(Conversation.id.desc())
            .limit(50)
        )
    ).all()
    identities = await managers_of(session, patient_id)
    consent = await consent_of(session, [i["id"] for i in identities])
    view = Patient360Read(
        patient=PatientSummaryRead.model_validate(patient_summary(patient, protector, disclosure)),
        identities=[
            IdentityRead.model_validate({**i, "consent": consent.get(i["id"], UNANSWERED)})
            for i in identities
        ],
        managed_patients=[
            ManagedPatientRead.model_validate(m)
            for m in await managed_by(session, protector, patient_id, disclosure)
        ],
        conversations=[
            ConversationLineRead(
                id=c.id, started_at=c.started_at, status=c.status, last_message_at=c.last_message_at
            )
            for c in conversations
        ],
        appointments=[
            AppointmentRecordRead.model_validate(a) for a in await patient_appointments(session, patient_id)
        ],
        followups=(
            await patient_followups(session, patient_id, None if staff.sees_all_teams else staff.team_ids)
            if staff.role in CARE_ROLES
            else None
        ),
    )
    actions = [("patient.view", {"view": "360"})]
    if reveal:
        actions.append(("patient.reveal", {"fields": ["id_number"]}))
    for action, detail in actions:
        await audit(
            session,
            staff_id=staff.id,
            action=action,
            object_type="patient",
            object_id=str(patient_id),
            patient_id=patient_id,
            request=request,
            detail=detail,
        )
    await session.commit()
    return view


#: Who may see each protected value in full: whoever calls patients back sees phone and card
#: numbers; the resident ID number is for admins.
REVEAL_ROLES = {
    "phone": FULL_PHONE_ROLES,
    "card_number": FULL_PHONE_ROLES,
    "id_number": frozenset({StaffRole.admin}),
}


@router.post("/patients/{patient_id}/reveal")
async def reveal_value(
    patient_id: RowId, body: RevealIn, staff: StaffDep, request: Request, session: DbSession
) -> RevealedRead:
    """One protected value of the patient in full, for a role that may see it; each reveal is
    audited as `patient.reveal` with the field it showed."""
    if staff.role not in REVEAL_ROLES[body.field]:
        raise AccessRefused(
            f"your role may not reveal {body.field}",
            action="patient.reveal",
            object_type="patient",
            object_id=patient_id,
            patient_id=patient_id,
            audit_detail={"fields": [body.field]},
        )
    patient = await _open(session, staff, patient_id, "reveal")
    everything = Disclosure(full_phone=True, full_id_number=True)
    value = patient_summary(patient, _protector(request), everything)[body.field]
    await audit(
        session,
        staff_id=staff.id,
        action="patient.reveal",
        object_type="patient",
        object_id=str(patient_id),
        patient_id=patient_id,
        request=request,
        detail={"fields": [body.field]},
    )
    await session.commit()
    return RevealedRead(field=body.field, value=value)


@router.get("/patients/{patient_id}")
async def view_patient(
    patient_id: RowId, staff: StaffDep, request: Request, session: DbSession
) -> PatientPanelRead:
    """The patient panel a conversation shows (docs/CONSOLE_API.md `PatientPanel`)."""
    await _open(session, staff, patient_id, "panel")
    panel = await patient_panel(session, patient_id, _protector(request))
    await audit(
        session,
        staff_id=staff.id,
        action="patient.view",
        object_type="patient",
        object_id=str(patient_id),
        patient_id=patient_id,
        request=request,
    )
    await session.commit()
    return panel
