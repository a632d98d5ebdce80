"""Read the booking details out of what a patient typed: department, doctor, day, half-day, for whom.

Departments and doctors are the hospital's own data (they change with every schedule import), so
they are matched against the database here rather than learned by the NLU model; days and half-days
come from `dates.py`, relationships from `patients.relations`. One call reads everything a sentence
offers, so "帮我妈约下周三上午的心内科" fills four answers at once.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_backend.appointments.dates import WhenAsked, understand_half_day, understand_when
from crm_backend.appointments.models import Department, Doctor, HalfDay
from crm_backend.patients.models import PatientRelation
from crm_backend.patients.relations import relation_in

#: "任意医生", "哪个医生都行", "随便": the patient does not mind who.
_ANY_DOCTOR = re.compile(r"任意|随便|都行|都可以|无所谓|不限|哪个医生|哪位医生|谁都")
#: 专家号: senior doctors (主任医师 and 副主任医师).
_EXPERT = re.compile(r"专家|主任|教授")
#: A doctor named by surname and a form of address: 张医生, 王主任, 李大夫, 陈教授.
_ADDRESSED = re.compile(r"([\u4e00-\u9fff])(?:医生|大夫|主任|教授|医师|老师)")


@dataclass(frozen=True, slots=True)
class BookingWords:
    department: Department | None = None
    doctor: Doctor | None = None
    any_doctor: bool = False
    expert: bool = False
    when: WhenAsked | None = None
    half_day: HalfDay | None = None
    relation: PatientRelation | None = None


def _department_names(department: Department) -> list[str]:
    return [department.name, department.patient_name, *(department.aliases or [])]


def department_in(text: str, departments: list[Department]) -> Department | None:
    """The department whose name or alias appears in the text; the longest name wins, so "心内科"
    beats the "内科" inside it."""
    folded = text.casefold()
    best: tuple[int, Department] | None = None
    for department in departments:
        if department.matches(text):
            return department
        for name in _department_names(department):
            if name and name.casefold() in folded and (best is None or len(name) > best[0]):
                best = (len(name), department)
    return best[1] if best else None


def doctor_in(text: str, doctors: list[Doctor]) -> Doctor | None:
    """A doctor named in full, or by surname and title when only one doctor has that surname."""
    named = [doctor for doctor in doctors if doctor.name in text]
    if len(named) == 1:
        return named[0]
    for surname in _ADDRESSED.findall(text):
        matches = [doctor for doctor in doctors if doctor.name.startswith(surname)]
        if len(matches) == 1:
            return matches[0]
    return None


async def read_booking_words(session: AsyncSession, text: str, now: datetime) -> BookingWords:
    text = text[:500]
    departments = list((await session.scalars(select(Department).order_by(Department.id))).all())
    department = department_in(text, departments)
    query = select(Doctor).where(Doctor.active.is_(True))
    if department is not None:
        query = query.where(Doctor.department_id == department.id)
    doctor = doctor_in(text, list((await session.scalars(query.order_by(Doctor.id))).all()))
    if department is None and doctor is not None:
        department = next((d for d in departments if d.id == doctor.department_id), None)
    # The date parser is CPU-bound (bounded, but up to ~0.1 s on hostile text): keep it off the loop.
    when = await asyncio.to_thread(understand_when, text, now)
    return BookingWords(
        department=department,
        doctor=doctor,
        any_doctor=bool(_ANY_DOCTOR.search(text)),
        expert=doctor is None and bool(_EXPERT.search(text)),
        when=when,
        half_day=when.half_day if when and when.half_day else understand_half_day(text),
        relation=relation_in(text),
    )
