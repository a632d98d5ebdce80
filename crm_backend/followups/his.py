"""A discharge the HIS reports (POST /api/his/discharges): a FHIR R4B Bundle read into an enrolment.

The Bundle carries one Patient (the resident ID is the identifier typed HL7 v2-0203 `NI`), one
Encounter (its identifier is the idempotency key; `period.end` is the discharge time) and one or
more Procedures (`code.text` / `code.coding`, `performedDateTime`). The patient is found by the
resident ID's lookup hash, else by the phone's when exactly one patient of that name has it (a
family shares a phone: a child's discharge must never land on the parent), else created. The plan
is the one whose procedures match (matching.py). The HIS's retry of the same Encounter finds the
enrolment it made; two identical requests racing meet at the unique `encounter_key`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.encounter import Encounter
from fhir.resources.R4B.patient import Patient as FhirPatient
from fhir.resources.R4B.procedure import Procedure
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from crm_backend.config import HOSPITAL_TZ, Settings
from crm_backend.followups.enrolment import (
    EnrolmentRequest,
    already_enrolled,
    date_problem,
    enrol,
    hold_patients,
)
from crm_backend.followups.matching import PerformedProcedure, current_versions, known_procedures, match_plan
from crm_backend.followups.models import EnrolmentSource, FollowupEnrolment
from crm_backend.followups.plans import PlanDefinition
from crm_backend.patients import validation as v
from crm_backend.patients.models import Patient
from crm_backend.protection import ID_NUMBER, MASKED_PHONE, PHONE, FieldProtector
from crm_backend.staff.models import Team

log = logging.getLogger(__name__)

V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
#: The responsible team when the HIS names none: the nurses (escalations call it "nursing").
NURSING_TEAM = "护理团队"


class DischargeError(ValueError):
    """What is wrong with the request, for the HIS's developers; `status_code` is the answer."""

    def __init__(self, message: str, status_code: int = 400, **detail: Any) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.detail = detail


@dataclass(frozen=True, slots=True)
class DischargedPatient:
    name: str | None
    sex: str | None
    birth_date: date | None
    id_number: str | None
    phone: str | None


@dataclass(frozen=True, slots=True)
class Discharge:
    patient: DischargedPatient
    encounter_key: str
    discharged_at: datetime
    attending_doctor: str
    #: Encounter.serviceProvider.display: the ward; a team of exactly that name is responsible.
    ward: str = ""
    procedures: list[tuple[PerformedProcedure, datetime | None]] = field(default_factory=list)

    @property
    def discharged_on(self) -> date:
        return self.discharged_at.astimezone(HOSPITAL_TZ).date()


def _problems(error: ValidationError) -> str:
    shown = [f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}" for e in error.errors()[:10]]
    return "; ".join(shown)


def parse_discharge(body: bytes) -> Discharge:
    """The Bundle read and checked; DischargeError(400) names the first problems found."""
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DischargeError(f"the body is not JSON: {exc}") from None
    except RecursionError:  # hostile nesting: refused, not a 500
        raise DischargeError("the body is nested too deeply") from None
    if not isinstance(data, dict) or data.get("resourceType") != "Bundle":
        raise DischargeError('the body must be a FHIR R4B Bundle (resourceType "Bundle")')
    try:
        bundle = Bundle.model_validate(data)
    except ValidationError as exc:
        raise DischargeError(f"not a valid FHIR R4B Bundle: {_problems(exc)}") from None
    except RecursionError:
        raise DischargeError("not a valid FHIR R4B Bundle: nested too deeply") from None
    resources = [entry.resource for entry in bundle.entry or [] if entry.resource is not None]
    patients = [r for r in resources if isinstance(r, FhirPatient)]
    encounters = [r for r in resources if isinstance(r, Encounter)]
    procedures = [r for r in resources if isinstance(r, Procedure)]
    if len(patients) != 1:
        raise DischargeError(f"the Bundle must hold exactly one Patient (it holds {len(patients)})")
    if len(encounters) != 1:
        raise DischargeError(f"the Bundle must hold exactly one Encounter (it holds {len(encounters)})")
    if not procedures:
        raise DischargeError("the Bundle must hold at least one Procedure")
    encounter = encounters[0]
    return Discharge(
        patient=_patient(patients[0]),
        encounter_key=_encounter_key(encounter),
        discharged_at=_discharged_at(encounter),
        attending_doctor=_attending(encounter),
        ward=str(encounter.serviceProvider.display or "").strip() if encounter.serviceProvider else "",
        procedures=[_procedure(index, p) for index, p in enumerate(procedures)],
    )


def _patient(resource: FhirPatient) -> DischargedPatient:
    id_number = None
    for identifier in resource.identifier or []:
        codings = identifier.type.coding if identifier.type and identifier.type.coding else []
        if any(c.system == V2_0203 and c.code == "NI" for c in codings) and identifier.value:
            id_number = v.normalise_id_number(identifier.value)
            problem = v.check_resident_id(id_number)
            if problem is not None:
                raise DischargeError("Patient.identifier (NI) is not a valid resident ID number")
    name = None
    for human in resource.name or []:
        name = (human.text or "").strip() or "".join([human.family or "", *(human.given or [])]).strip()
        if name:
            break
    phone = None
    for contact in resource.telecom or []:
        if (
            contact.system == "phone"
            and contact.value
            and v.check_mobile_phone(v.normalise_phone(contact.value)) is None
        ):
            phone = v.normalise_phone(contact.value)
            break
    sex = {"male": "M", "female": "F"}.get(resource.gender or "")
    if id_number is not None:
        sex = sex or v.sex_of(id_number)
    birth = resource.birthDate if isinstance(resource.birthDate, date) else None
    if id_number is not None and birth is None:
        birth = v.birth_date_of(id_number)
    return DischargedPatient(name[:64] if name else None, sex, birth, id_number, phone)


def _encounter_key(encounter: Encounter) -> str:
    for identifier in encounter.identifier or []:
        if identifier.value:
            key = f"{identifier.system or ''}|{identifier.value}"
            if len(key) > 255:  # cut, two admissions could share a key: a retry answered with another's
                raise DischargeError("Encounter.identifier: system and value longer than 255 characters")
            return key
    raise DischargeError("Encounter.identifier with a value is required (it makes a retry safe)")


def _in_range(moment: datetime, where: str) -> datetime:
    """`moment` when its date can anchor an enrolment (enrolment.date_problem); a year such as 9999
    is 400, not an overflow later when the check-ins are counted from it."""
    problem = date_problem(where, moment.date())
    if problem is not None:
        raise DischargeError(problem)
    return moment


def _discharged_at(encounter: Encounter) -> datetime:
    end = encounter.period.end if encounter.period else None
    if not isinstance(end, datetime):
        raise DischargeError("Encounter.period.end (the discharge time, with a time zone) is required")
    return _in_range(
        end if end.tzinfo is not None else end.replace(tzinfo=HOSPITAL_TZ), "Encounter.period.end"
    )


def _attending(encounter: Encounter) -> str:
    """The attending physician (participant typed ATND), else the first participant named."""
    named = [p for p in encounter.participant or [] if p.individual and p.individual.display]
    for participant in named:
        for kind in participant.type or []:
            if any(c.code == "ATND" for c in kind.coding or []):
                return str(participant.individual.display)[:64]
    return str(named[0].individual.display)[:64] if named else ""


def _procedure(index: int, resource: Procedure) -> tuple[PerformedProcedure, datetime | None]:
    code = resource.code
    text = (code.text or "").strip() if code else ""
    codings = [c for c in (code.coding or [])] if code else []
    if not text:
        text = next((str(c.display) for c in codings if c.display), "")
    codes = tuple(str(c.code) for c in codings if c.code)
    if not text and not codes:
        raise DischargeError(f"Procedure {index + 1}: code.text or code.coding is required")
    performed = resource.performedDateTime
    if not isinstance(performed, datetime) and resource.performedPeriod is not None:
        performed = resource.performedPeriod.start
    if not isinstance(performed, datetime):
        return PerformedProcedure(text[:200], codes), None
    if performed.tzinfo is None:
        performed = performed.replace(tzinfo=HOSPITAL_TZ)
    return PerformedProcedure(text[:200], codes), _in_range(
        performed, f"Procedure {index + 1} performedDateTime"
    )


# -- the patient ------------------------------------------------------------------------------------------


async def find_or_create_patient(
    session: AsyncSession, protector: FieldProtector, found: DischargedPatient
) -> tuple[Patient, str]:
    """The patient on file, and how they were found: "id_number", "phone" or "created"."""
    if found.id_number is not None:
        id_hash = protector.lookup_hash(ID_NUMBER, found.id_number)
        patient = await session.scalar(select(Patient).where(Patient.id_number_hash == id_hash))
        if patient is not None:
            _fill_missing(patient, found, protector)
            return patient, "id_number"
    if found.phone is not None:
        phone_hash = protector.lookup_hash(PHONE, found.phone)
        same_phone = list(
            (await session.scalars(select(Patient).where(Patient.phone_hash == phone_hash))).all()
        )
        # A phone alone is trusted only for the one person of that name who has it, and who has
        # no other resident ID on file. Both names must be known: a record without a name (one the
        # HIS created from a nameless Patient) may be anyone in the family that shares the phone.
        candidates = [
            p
            for p in same_phone
            if found.name
            and p.display_name == found.name
            and (found.id_number is None or p.id_number_hash is None)
        ]
        if len(candidates) == 1 and len(same_phone) == 1:
            _fill_missing(candidates[0], found, protector)
            return candidates[0], "phone"
    patient = Patient(created_at=datetime.now(UTC))
    _fill_missing(patient, found, protector)
    session.add(patient)
    await session.flush()
    return patient, "created"


def _fill_missing(patient: Patient, found: DischargedPatient, protector: FieldProtector) -> None:
    """What the HIS knows and the record lacks; a value on file is never overwritten."""
    if not patient.display_name and found.name:
        patient.display_name = found.name
    if not patient.sex and found.sex:
        patient.sex = found.sex
    if patient.birth_date is None and found.birth_date is not None:
        patient.birth_date = found.birth_date
    if patient.phone_cipher is None and found.phone is not None:
        patient.phone_cipher = protector.encrypt(PHONE, found.phone)
        patient.phone_hash = protector.lookup_hash(PHONE, found.phone)
        patient.masked_phone_hash = protector.lookup_hash(MASKED_PHONE, v.mask_phone(found.phone))
    if patient.id_number_cipher is None and found.id_number is not None:
        patient.id_number_cipher = protector.encrypt(ID_NUMBER, found.id_number)
        patient.id_number_hash = protector.lookup_hash(ID_NUMBER, found.id_number)


# -- the enrolment --------------------------------------------------------------------------------------


async def nursing_team(session: AsyncSession) -> Team:
    """The default responsible team, created on first use as escalations create theirs."""
    team = await session.scalar(select(Team).where(Team.name == NURSING_TEAM))
    if team is None:
        try:
            async with session.begin_nested():
                team = Team(name=NURSING_TEAM)
                session.add(team)
        except IntegrityError:
            team = await session.scalar(select(Team).where(Team.name == NURSING_TEAM))
    assert team is not None
    return team


async def _team(session: AsyncSession, ward: str) -> Team:
    """The team named like the ward the HIS names (Encounter.serviceProvider), else nursing."""
    if ward:
        team = await session.scalar(select(Team).where(Team.name == ward[:64]))
        if team is not None:
            return team
    return await nursing_team(session)


async def enrolment_by_encounter(session: AsyncSession, encounter_key: str) -> FollowupEnrolment | None:
    return await session.scalar(
        select(FollowupEnrolment).where(FollowupEnrolment.encounter_key == encounter_key)
    )


async def retry_differences(
    session: AsyncSession, protector: FieldProtector, enrolled: FollowupEnrolment, discharge: Discharge
) -> list[str]:
    """What this Bundle says otherwise than the one that enrolled its Encounter: a retry must be
    the same request. A HIS that corrects a discharge under the same Encounter identifier is told
    (409) rather than answered with the old enrolment as if nothing differed."""
    differences = []
    if enrolled.discharged_on != discharge.discharged_on:
        differences.append("Encounter.period.end (discharge date)")
    if discharge.attending_doctor and enrolled.attending_doctor != discharge.attending_doctor:
        differences.append("Encounter.participant (attending doctor)")
    patient = await session.get(Patient, enrolled.patient_id)
    id_number = discharge.patient.id_number
    if patient is not None and id_number is not None and patient.id_number_hash is not None:
        if patient.id_number_hash != protector.lookup_hash(ID_NUMBER, id_number):
            differences.append("Patient.identifier (resident ID)")
    return differences


async def enrol_discharge(
    session: AsyncSession, protector: FieldProtector, settings: Settings, discharge: Discharge
) -> tuple[FollowupEnrolment, PlanDefinition, str]:
    """Match the plan, find or create the patient and enrol them (flushed, the caller commits).
    Returns the enrolment, its plan and how the patient was found. DischargeError(422) when no
    plan covers the procedures or the plan's anchor date is missing."""
    plans = await current_versions(session)
    matched = match_plan(plans, [procedure for procedure, _ in discharge.procedures])
    if matched is None:
        named = [procedure.text or "/".join(procedure.codes) for procedure, _ in discharge.procedures]
        raise DischargeError(
            f"no follow-up plan covers the procedures {named}",
            422,
            known_procedures=known_procedures(plans),
        )
    anchor = discharge.discharged_on
    if matched.definition.anchor == "surgery":
        performed = dict(discharge.procedures).get(matched.procedure)
        if performed is None:
            raise DischargeError(
                f"plan {matched.definition.code} counts from the surgery date: "
                "Procedure.performedDateTime is required",
                422,
            )
        anchor = performed.astimezone(HOSPITAL_TZ).date()
    patient, found_by = await find_or_create_patient(session, protector, discharge.patient)
    await hold_patients(session, [patient.id])
    earlier = await already_enrolled(session, patient.id, matched.version.id, anchor)
    if earlier is not None:
        # Another Encounter identifier for the same patient, plan and date: the same discharge
        # sent again, or two discharges the HIS should tell apart. Asking everything twice is wrong
        # either way; staff correct it in the console.
        raise DischargeError(
            f"the patient is already enrolled in {matched.definition.code} from {anchor} "
            f"(enrolment {earlier.id}, {earlier.status}) under another Encounter identifier",
            409,
            enrolment_id=earlier.id,
        )
    team = await _team(session, discharge.ward)
    enrolment = await enrol(
        session,
        EnrolmentRequest(
            patient_id=patient.id,
            plan_version_id=matched.version.id,
            anchor_date=anchor,
            discharged_on=discharge.discharged_on,
            team_id=team.id,
            source=EnrolmentSource.his,
            attending_doctor=discharge.attending_doctor,
            procedure=matched.procedure.text,
            encounter_key=discharge.encounter_key,
        ),
        settings,
    )
    return enrolment, matched.definition, found_by
