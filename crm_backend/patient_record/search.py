"""Console search for patients: names by prefix, numbers exactly through their keyed hashes."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_backend.patient_record.access import visible_to
from crm_backend.patients import validation as v
from crm_backend.patients.models import Patient
from crm_backend.protection import CARD_NUMBER, ID_NUMBER, MASKED_PHONE, PHONE, FieldProtector
from crm_backend.staff.deps import CurrentStaff


@dataclass(frozen=True, slots=True)
class SearchPlan:
    """What a console query is matched against; `kinds` goes to the audit log instead of the query."""

    kinds: tuple[str, ...]
    condition: ColumnElement[bool]


#: A phone number as the console shows it: 138****1234 (any number of stars, spaces ignored).
_MASKED_PHONE = re.compile(r"^(1\d{2})\*+(\d{4})$")


def plan_search(protector: FieldProtector, query: str) -> SearchPlan:
    """Names by prefix; phone, ID and card numbers exactly, and a masked phone (138****1234),
    through their keyed hashes."""
    text = query.strip()
    masked = _MASKED_PHONE.match(re.sub(r"[\s-]", "", text))
    if masked:
        shown = v.mask_phone(masked.group(1) + "0000" + masked.group(2))
        return SearchPlan(
            ("masked_phone",), Patient.masked_phone_hash == protector.lookup_hash(MASKED_PHONE, shown)
        )
    if not any(ch.isdigit() for ch in text):
        return SearchPlan(("name",), Patient.display_name.startswith(text, autoescape=True))
    kinds: list[str] = []
    conditions: list[ColumnElement[bool]] = []
    phone = v.normalise_phone(text)
    if v.check_mobile_phone(phone) is None:
        kinds.append("phone")
        conditions.append(Patient.phone_hash == protector.lookup_hash(PHONE, phone))
    id_number = v.normalise_id_number(text)
    if len(id_number) == 18:
        kinds.append("id_number")
        conditions.append(Patient.id_number_hash == protector.lookup_hash(ID_NUMBER, id_number))
    card = v.normalise_card_number(text)
    if v.check_card_number(card) is None:
        kinds.append("card_number")
        conditions.append(Patient.card_number_hash == protector.lookup_hash(CARD_NUMBER, card))
    if not conditions:
        return SearchPlan(("none",), Patient.id.is_(None))
    return SearchPlan(tuple(kinds), or_(*conditions))


async def search_patients(
    session: AsyncSession, protector: FieldProtector, staff: CurrentStaff, query: str, *, limit: int = 50
) -> tuple[SearchPlan, list[Patient]]:
    plan = plan_search(protector, query)
    statement = select(Patient).where(plan.condition)
    scope = visible_to(staff)
    if scope is not None:
        statement = statement.where(scope)
    rows = (await session.scalars(statement.order_by(Patient.display_name, Patient.id).limit(limit))).all()
    return plan, list(rows)
