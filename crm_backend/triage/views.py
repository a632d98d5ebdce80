"""Console endpoints for the departments' triage fields: supervisors and admins read and edit the
patient-facing description, symptom terms, ages and sex (audited), and try a question against them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator
from sqlalchemy import select

from crm_backend.appointments.models import Department
from crm_backend.audit.service import record as audit
from crm_backend.database.core import RowId
from crm_backend.staff.deps import DbSession, SupervisorDep
from crm_backend.triage.catalogue import TERM_MAX_CHARS, BadTerm, compile_term
from crm_backend.triage.departments import Recommendation, recommend
from crm_backend.triage.store import hospital_departments

router = APIRouter(prefix="/api/console", tags=["console"])

MAX_TERMS = 300
Age = Annotated[int, Field(ge=0, le=120)]


class SymptomTermIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: "/" separates alternatives, "…" allows a few characters between parts: "腹痛/肚子…疼".
    term: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=TERM_MAX_CHARS)]
    weight: float = Field(default=1.0, ge=0.1, le=10)

    @field_validator("term")
    @classmethod
    def readable(cls, term: str) -> str:
        try:
            compile_term(term)
        except BadTerm as exc:
            raise ValueError(str(exc)) from None
        return term


class DepartmentTriageRead(BaseModel):
    id: int
    code: str
    name: str
    patient_name: str
    aliases: list[str]
    description: str
    symptom_terms: list[SymptomTermIn]
    min_age_years: int | None
    max_age_years: int | None
    sex: Literal["female", "male"] | None


class DepartmentTriagePatch(BaseModel):
    """Only the fields sent change; `null` clears an age limit or the sex."""

    model_config = ConfigDict(extra="forbid")

    description: (
        Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)] | None
    ) = None
    symptom_terms: Annotated[list[SymptomTermIn], Field(max_length=MAX_TERMS)] | None = None
    min_age_years: Age | None = None
    max_age_years: Age | None = None
    sex: Literal["female", "male"] | None = None

    @field_validator("symptom_terms")
    @classmethod
    def distinct(cls, terms: list[SymptomTermIn] | None) -> list[SymptomTermIn] | None:
        if terms is not None:
            seen = [t.term for t in terms]
            duplicates = sorted({t for t in seen if seen.count(t) > 1})
            if duplicates:
                raise ValueError(f"terms listed twice: {', '.join(duplicates)}")
        return terms

    @model_validator(mode="after")
    def no_null_text(self) -> DepartmentTriagePatch:
        for name in ("description", "symptom_terms"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self


class TriagePreviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
    age_years: Age | None = None
    sex: Literal["female", "male"] | None = None
    pregnant: bool | None = None


def _read(department: Department) -> DepartmentTriageRead:
    return DepartmentTriageRead(
        id=department.id,
        code=department.code,
        name=department.name,
        patient_name=department.patient_name,
        aliases=list(department.aliases or []),
        description=department.description or "",
        symptom_terms=[SymptomTermIn(**t) for t in department.symptom_terms or []],
        min_age_years=department.min_age_years,
        max_age_years=department.max_age_years,
        sex=department.sex,  # type: ignore[arg-type]  # only "female", "male" or None are ever stored
    )


async def _department(session: DbSession, department_id: int) -> Department:
    department = await session.get(Department, department_id)
    if department is None:
        raise HTTPException(404, "no such department")
    return department


@router.get("/departments")
async def list_departments(staff: SupervisorDep, session: DbSession) -> list[DepartmentTriageRead]:
    rows = (await session.scalars(select(Department).order_by(Department.id))).all()
    return [_read(row) for row in rows]


@router.get("/departments/{department_id}")
async def read_department(
    department_id: RowId, staff: SupervisorDep, session: DbSession
) -> DepartmentTriageRead:
    return _read(await _department(session, department_id))


@router.patch("/departments/{department_id}")
async def update_department(
    department_id: RowId,
    body: DepartmentTriagePatch,
    staff: SupervisorDep,
    request: Request,
    session: DbSession,
) -> DepartmentTriageRead:
    """Edit the triage fields; the audit entry keeps each changed field's value before and after."""
    department = await _department(session, department_id)
    new: dict[str, Any] = body.model_dump(include=body.model_fields_set)
    min_age = new.get("min_age_years", department.min_age_years)
    max_age = new.get("max_age_years", department.max_age_years)
    if min_age is not None and max_age is not None and min_age > max_age:
        raise HTTPException(400, "min_age_years must not be above max_age_years")
    changes = {}
    for field, value in new.items():
        before = getattr(department, field)
        if value != before:
            changes[field] = {"before": before, "after": value}
            setattr(department, field, value)
    if changes:
        await audit(
            session,
            staff_id=staff.id,
            action="department.triage_update",
            object_type="department",
            object_id=department.id,
            request=request,
            detail={"code": department.code, "changes": changes},
        )
        await session.commit()
    return _read(department)


@router.post("/departments/triage-preview")
async def preview_triage(body: TriagePreviewIn, staff: SupervisorDep, session: DbSession) -> Recommendation:
    """What triage would recommend for a question, with the departments as they are now (nothing stored)."""
    departments = await hospital_departments(session)
    if not departments:
        raise HTTPException(409, "the hospital has no departments yet")
    return recommend(
        body.text, age_years=body.age_years, sex=body.sex, pregnant=body.pregnant, departments=departments
    )
