"""The hospital's departments as triage sees them: read from the database (as staff edited them),
and first filled from the reviewed data file.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_backend.appointments.models import Department
from crm_backend.triage.catalogue import DepartmentProfile, Sex, SymptomTerm, TriageData, load_triage_data


def profile_of(department: Department) -> DepartmentProfile:
    return DepartmentProfile(
        code=department.code,
        name=department.patient_name,
        description=department.description or "",
        aliases=tuple(dict.fromkeys([department.name, *(department.aliases or [])])),
        terms=tuple(
            SymptomTerm(t["term"], float(t.get("weight", 1.0))) for t in department.symptom_terms or []
        ),
        min_age=department.min_age_years,
        max_age=department.max_age_years,
        sex=Sex(department.sex) if department.sex else None,
        id=department.id,
    )


async def hospital_departments(session: AsyncSession) -> list[DepartmentProfile]:
    """Every department of this hospital, for `recommend(..., departments=...)`."""
    rows = (await session.scalars(select(Department).order_by(Department.id))).all()
    return [profile_of(row) for row in rows]


def has_triage_fields(department: Department) -> bool:
    return bool(department.description or department.symptom_terms)


async def seed_departments(session: AsyncSession, data: TriageData | None = None) -> list[str]:
    """Fill the triage fields of departments that have none from the data file (matched by code);
    what staff have already edited is never overwritten. Returns the codes filled; the caller commits."""
    profiles = {p.code: p for p in (data or load_triage_data()).departments}
    filled = []
    for department in (await session.scalars(select(Department).order_by(Department.id))).all():
        profile = profiles.get(department.code)
        if profile is None or has_triage_fields(department):
            continue
        department.description = profile.description
        department.symptom_terms = [{"term": t.term, "weight": t.weight} for t in profile.terms]
        department.min_age_years = profile.min_age
        department.max_age_years = profile.max_age
        department.sex = profile.sex.value if profile.sex else None
        filled.append(department.code)
    return filled
