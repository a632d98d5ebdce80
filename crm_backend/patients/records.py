"""Patient records (就诊人): who an identity may book for, protected details, and how staff see them.

The booking dialogue calls `add_managed_patient` / `list_managed_patients` (bot_views.py); the
console's patient views (crm_backend/patient_record/) show patients through `patient_summary`,
`managed_by` and `managers_of`. Plain values exist only in memory: columns hold ciphertext and keyed
hashes (crm_backend/protection.py), and everything shown is masked unless a `Disclosure` allows it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date
from typing import Any

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from crm_backend.patients import validation as v
from crm_backend.patients.models import Patient, PatientLink, PatientRelation, WeChatIdentity
from crm_backend.protection import (
    CARD_NUMBER,
    ID_NUMBER,
    MASKED_PHONE,
    PHONE,
    FieldProtector,
    ProtectionError,
)
from crm_backend.staff.models import StaffRole

log = logging.getLogger("carebridge.patients")

#: WeChat hospital services commonly cap 就诊人 per account; it also limits what one account can reach.
MAX_MANAGED_PATIENTS = 10

MSG_RELATION = "请选择您与就诊人的关系：本人、子女、父母、配偶或其他。"
MSG_TOO_MANY = f"每个微信账号最多可添加{MAX_MANAGED_PATIENTS}位就诊人，如需调整请联系医院工作人员。"
MSG_SELF_EXISTS = "您已登记过本人信息，如需修改请联系医院工作人员。"
MSG_ID_TAKEN = "该身份证号已登记在其他就诊人名下，请联系医院工作人员处理。"
MSG_EXISTING_MISMATCH = "填写的信息与医院已登记的就诊人信息不一致，请核对姓名，或联系医院工作人员。"
MSG_IS_YOURSELF = "这是您本人的信息，请选择关系为“本人”。"

#: Roles that may reveal a full phone (and hospital card) number: nurses call patients back.
FULL_PHONE_ROLES = frozenset({StaffRole.nurse, StaffRole.supervisor, StaffRole.admin})


class PatientDataError(ValueError):
    """Invalid details; `message` is Chinese and safe to send to the patient as it is."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True, slots=True)
class ManagedPatient:
    """A patient an identity may book for, with decrypted details (keep out of logs)."""

    patient_id: int
    relationship: PatientRelation
    name: str | None
    sex: str | None
    birth_date: date | None
    phone: str | None
    id_number: str | None
    card_number: str | None


@dataclass(frozen=True, slots=True)
class Disclosure:
    """Which protected values a view shows in full; everything else is masked. Staff views are
    masked, and a value is shown in full through an audited reveal (patient_record/views.py)."""

    full_phone: bool = False
    full_id_number: bool = False


MASKED = Disclosure()


def _fail(message: str | None) -> None:
    if message is not None:
        raise PatientDataError(message)


def _open(protector: FieldProtector, field: str, token: str | None, patient_id: int) -> str | None:
    """Decrypt for display; a value that no configured key opens shows as missing (and is logged)."""
    if token is None:
        return None
    try:
        return protector.decrypt(field, token)
    except ProtectionError:
        log.error("patient %s: stored %s does not decrypt with the configured keys", patient_id, field)
        return None


def _managed(patient: Patient, relation: PatientRelation, protector: FieldProtector) -> ManagedPatient:
    return ManagedPatient(
        patient_id=patient.id,
        relationship=relation,
        name=patient.display_name,
        sex=patient.sex,
        birth_date=patient.birth_date,
        phone=_open(protector, PHONE, patient.phone_cipher, patient.id),
        id_number=_open(protector, ID_NUMBER, patient.id_number_cipher, patient.id),
        card_number=_open(protector, CARD_NUMBER, patient.card_number_cipher, patient.id),
    )


@dataclass(frozen=True, slots=True)
class _Details:
    name: str
    sex: str
    birth_date: date
    phone: str
    id_number: str | None
    card_number: str | None


def _validated(
    name: str,
    sex: str | None,
    birth_date: date | None,
    phone: str,
    id_number: str | None,
    card_number: str | None,
) -> _Details:
    """Every check, first failure wins; sex and birth date come from the ID number when not given."""
    _fail(v.check_name(name))
    _fail(v.check_sex(sex))
    _fail(v.check_mobile_phone(phone))
    id_number = v.normalise_id_number(id_number) if id_number and id_number.strip() else None
    card_number = v.normalise_card_number(card_number) if card_number and card_number.strip() else None
    if id_number is None and card_number is None:
        raise PatientDataError(v.MSG_ID_OR_CARD)
    if card_number is not None:
        _fail(v.check_card_number(card_number))
    if id_number is not None:
        _fail(v.check_resident_id(id_number))
        if birth_date is not None:
            _fail(v.check_birth_date_matches(id_number, birth_date))
        _fail(v.check_sex_matches(id_number, sex))
        birth_date = v.birth_date_of(id_number)
        sex = v.sex_of(id_number)
    if sex is None:
        raise PatientDataError(v.MSG_SEX)
    if birth_date is None:
        raise PatientDataError(v.MSG_BIRTH_RANGE)
    _fail(v.check_birth_date(birth_date))
    return _Details(name.strip(), sex, birth_date, v.normalise_phone(phone), id_number, card_number)


def _fill(patient: Patient, details: _Details, protector: FieldProtector) -> None:
    patient.display_name = details.name
    patient.sex = details.sex
    patient.birth_date = details.birth_date
    patient.phone_cipher = protector.encrypt(PHONE, details.phone)
    patient.phone_hash = protector.lookup_hash(PHONE, details.phone)
    patient.masked_phone_hash = protector.lookup_hash(MASKED_PHONE, v.mask_phone(details.phone))
    if details.id_number is not None:
        patient.id_number_cipher = protector.encrypt(ID_NUMBER, details.id_number)
        patient.id_number_hash = protector.lookup_hash(ID_NUMBER, details.id_number)
    if details.card_number is not None:
        patient.card_number_cipher = protector.encrypt(CARD_NUMBER, details.card_number)
        patient.card_number_hash = protector.lookup_hash(CARD_NUMBER, details.card_number)


async def _by_id_hash(session: AsyncSession, id_hash: str) -> Patient | None:
    return await session.scalar(select(Patient).where(Patient.id_number_hash == id_hash))


async def _link(
    session: AsyncSession, identity: WeChatIdentity, patient: Patient, relation: PatientRelation
) -> None:
    session.add(PatientLink(identity_id=identity.id, patient_id=patient.id, relationship=relation))
    await session.flush()


async def add_managed_patient(
    session: AsyncSession,
    protector: FieldProtector,
    identity: WeChatIdentity,
    relationship: str,
    *,
    name: str,
    sex: str | None,
    birth_date: date | None,
    phone: str,
    id_number: str | None = None,
    card_number: str | None = None,
) -> ManagedPatient:
    """Validate and register a 就诊人 for `identity`; the caller commits.

    A person already on file (same ID-number hash) is linked, not duplicated, if the name agrees
    (so knowing someone's ID number alone does not attach their record). `self` fills in the
    identity's own record, where its conversations are filed. Adding the same patient twice returns
    the existing link. Raises PatientDataError with a message for the patient.
    """
    try:
        relation = PatientRelation(relationship)
    except ValueError:
        raise PatientDataError(MSG_RELATION) from None
    details = _validated(name, sex, birth_date, phone, id_number, card_number)
    links = (await session.scalars(select(PatientLink).where(PatientLink.identity_id == identity.id))).all()
    id_hash = protector.lookup_hash(ID_NUMBER, details.id_number) if details.id_number else None
    existing = await _by_id_hash(session, id_hash) if id_hash else None

    if existing is not None and existing.display_name not in (None, details.name):
        raise PatientDataError(MSG_EXISTING_MISMATCH)
    if existing is not None and any(link.patient_id == existing.id for link in links):
        current = next(link for link in links if link.patient_id == existing.id)
        return _managed(existing, PatientRelation(current.relationship), protector)
    if len(links) >= MAX_MANAGED_PATIENTS:
        raise PatientDataError(MSG_TOO_MANY)

    if relation is PatientRelation.SELF:
        if any(link.relationship == PatientRelation.SELF for link in links):
            raise PatientDataError(MSG_SELF_EXISTS)
        if existing is not None and existing.id != identity.patient_id:
            # Merging two records (and their conversations) is a decision for staff, not for chat.
            raise PatientDataError(MSG_ID_TAKEN)
        own = await session.get(Patient, identity.patient_id)
        assert own is not None
        _fill(own, details, protector)
        try:
            async with session.begin_nested():
                await _link(session, identity, own, relation)
        except IntegrityError:
            raise PatientDataError(MSG_ID_TAKEN) from None
        return _managed(own, relation, protector)

    if existing is not None and existing.id == identity.patient_id:
        raise PatientDataError(MSG_IS_YOURSELF)
    if existing is None:
        try:
            async with session.begin_nested():
                patient = Patient()
                _fill(patient, details, protector)
                session.add(patient)
                await session.flush()
        except IntegrityError:
            # Another family member registered the same person a moment ago: link theirs.
            assert id_hash is not None
            existing = await _by_id_hash(session, id_hash)
            if existing is None:
                raise
            if existing.display_name not in (None, details.name):
                raise PatientDataError(MSG_EXISTING_MISMATCH) from None
            patient = existing
    else:
        patient = existing
    await _link(session, identity, patient, relation)
    return _managed(patient, relation, protector)


async def list_managed_patients(
    session: AsyncSession, protector: FieldProtector, identity: WeChatIdentity
) -> list[ManagedPatient]:
    """The identity's 就诊人, the holder first (once they bound their details), then oldest first."""
    rows = (
        await session.execute(
            select(Patient, PatientLink.relationship)
            .join(PatientLink, PatientLink.patient_id == Patient.id)
            .where(PatientLink.identity_id == identity.id)
            .order_by((PatientLink.relationship != PatientRelation.SELF.value), PatientLink.created_at)
        )
    ).all()
    return [_managed(patient, PatientRelation(relation), protector) for patient, relation in rows]


# -- views -------------------------------------------------------------------------------------


def mask_openid(openid: str) -> str:
    return openid if len(openid) <= 8 else f"{openid[:4]}****{openid[-4:]}"


def _label(patient: Patient) -> str:
    return patient.display_name or f"患者 {patient.id}"


class MaskedRead(BaseModel):
    """Which protected values of a patient are masked in this answer."""

    phone: bool
    id_number: bool
    card_number: bool


class PatientSummaryRead(BaseModel):
    id: int
    label: str
    name: str | None
    sex: str | None
    birth_date: str | None
    phone: str | None
    id_number: str | None
    card_number: str | None
    masked: MaskedRead


class ManagedPatientRead(PatientSummaryRead):
    """A 就诊人 one of the patient's WeChat identities manages."""

    relationship: str
    identity_id: int


def patient_summary(patient: Patient, protector: FieldProtector, disclosure: Disclosure) -> dict[str, Any]:
    """One patient as the console shows it; protected values masked unless `disclosure` allows."""
    phone = _open(protector, PHONE, patient.phone_cipher, patient.id)
    id_number = _open(protector, ID_NUMBER, patient.id_number_cipher, patient.id)
    card = _open(protector, CARD_NUMBER, patient.card_number_cipher, patient.id)
    return {
        "id": patient.id,
        "label": _label(patient),
        "name": patient.display_name,
        "sex": patient.sex,
        "birth_date": patient.birth_date.isoformat() if patient.birth_date else None,
        "phone": (phone if disclosure.full_phone else v.mask_phone(phone)) if phone else None,
        "id_number": (
            (id_number if disclosure.full_id_number else v.mask_id_number(id_number)) if id_number else None
        ),
        # Card numbers identify less than ID numbers; whoever may call the patient may read them.
        "card_number": (card if disclosure.full_phone else v.mask_card_number(card)) if card else None,
        "masked": {
            "phone": not disclosure.full_phone,
            "id_number": not disclosure.full_id_number,
            "card_number": not disclosure.full_phone,
        },
    }


async def managed_by(
    session: AsyncSession, protector: FieldProtector, patient_id: int, disclosure: Disclosure = MASKED
) -> list[dict[str, Any]]:
    """Patients the given patient's WeChat identities manage (their 就诊人), other than themselves."""
    rows = (
        await session.execute(
            select(Patient, PatientLink.relationship, PatientLink.identity_id)
            .join(PatientLink, PatientLink.patient_id == Patient.id)
            .join(WeChatIdentity, WeChatIdentity.id == PatientLink.identity_id)
            .where(WeChatIdentity.patient_id == patient_id, Patient.id != patient_id)
            .order_by(PatientLink.created_at, Patient.id)
        )
    ).all()
    # A reveal is for the patient being viewed only: dependants' ID numbers stay masked.
    shown = Disclosure(full_phone=disclosure.full_phone)
    return [
        {**patient_summary(p, protector, shown), "relationship": rel, "identity_id": identity_id}
        for p, rel, identity_id in rows
    ]


async def managers_of(session: AsyncSession, patient_id: int) -> list[dict[str, Any]]:
    """WeChat identities that reach this patient: their own, and family members' who manage them."""
    own = (await session.scalars(select(WeChatIdentity).where(WeChatIdentity.patient_id == patient_id))).all()
    linked = (
        await session.execute(
            select(WeChatIdentity, PatientLink.relationship, Patient)
            .join(PatientLink, PatientLink.identity_id == WeChatIdentity.id)
            .join(Patient, Patient.id == WeChatIdentity.patient_id)
            .where(PatientLink.patient_id == patient_id, WeChatIdentity.patient_id != patient_id)
            .order_by(PatientLink.created_at)
        )
    ).all()
    result = [
        {
            "id": i.id,
            "app_id": i.app_id,
            "openid_masked": mask_openid(i.openid),
            "subscribed": i.subscribed,
            "relationship": PatientRelation.SELF.value,
            "holder": {"id": patient_id},
        }
        for i in own
    ]
    result += [
        {
            "id": i.id,
            "app_id": i.app_id,
            "openid_masked": mask_openid(i.openid),
            "subscribed": i.subscribed,
            "relationship": rel,
            "holder": {"id": holder.id, "label": _label(holder)},
        }
        for i, rel, holder in linked
    ]
    return result
