"""Console endpoints for hospital information: all staff read it, supervisors and admins edit it (audited)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from crm_backend.audit.service import record as audit
from crm_backend.hospital_info.models import HospitalInfoEntry
from crm_backend.hospital_info.service import hospital_entries
from crm_backend.staff.deps import DbSession, StaffDep, SupervisorDep

router = APIRouter(prefix="/api/console", tags=["console"])

Keyword = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=20)]


class HospitalInfoRead(BaseModel):
    key: str
    title: str
    keywords: list[str]
    answer: str


class HospitalInfoPatch(BaseModel):
    """Only the fields sent change."""

    model_config = ConfigDict(extra="forbid")

    title: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40)] | None = None
    keywords: Annotated[list[Keyword], Field(min_length=1, max_length=60)] | None = None
    answer: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=1000)] | None = (
        None
    )

    @model_validator(mode="after")
    def something_and_no_null(self) -> HospitalInfoPatch:
        if not self.model_fields_set:
            raise ValueError("nothing to change")
        for name in self.model_fields_set:
            if getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self


def _read(entry: HospitalInfoEntry) -> HospitalInfoRead:
    return HospitalInfoRead(
        key=entry.key, title=entry.title, keywords=list(entry.keywords or []), answer=entry.answer
    )


@router.get("/hospital-info")
async def list_hospital_info(staff: StaffDep, session: DbSession) -> list[HospitalInfoRead]:
    return [_read(entry) for entry in await hospital_entries(session)]


@router.put("/hospital-info/{key}")
async def update_hospital_info(
    key: Annotated[str, StringConstraints(max_length=40)],
    body: HospitalInfoPatch,
    staff: SupervisorDep,
    request: Request,
    session: DbSession,
) -> HospitalInfoRead:
    """Edit one answer; the audit entry keeps each changed field before and after."""
    await hospital_entries(session)
    entry = await session.get(HospitalInfoEntry, key)
    if entry is None:
        raise HTTPException(404, "no such hospital information entry")
    changes: dict[str, Any] = {}
    for field, value in body.model_dump(include=body.model_fields_set).items():
        before = getattr(entry, field)
        if value != before:
            changes[field] = {"before": before, "after": value}
            setattr(entry, field, value)
    if changes:
        entry.version = ""
        await audit(
            session,
            staff_id=staff.id,
            action="hospital_info.update",
            object_type="hospital_info",
            object_id=entry.key,
            request=request,
            detail={"changes": changes},
        )
        await session.commit()
    return _read(entry)
