"""Console helpers for the complaint tests: departments, liaisons and what the audit log holds."""

from __future__ import annotations

import itertools

import httpx
from sqlalchemy import select

from crm_backend.appointments.models import Department
from crm_backend.audit.models import AuditEntry
from crm_backend.runtime import Runtime

_codes = itertools.count(1)


async def department(runtime: Runtime, name: str) -> int:
    async with runtime.db.sessions() as session:
        row = Department(code=f"CMP{next(_codes):04d}", name=name, patient_name=name, aliases=[])
        session.add(row)
        await session.commit()
        return row.id


async def make_liaison(office: httpx.AsyncClient, department_id: int, staff_id: int) -> None:
    response = await office.put(
        f"/api/console/complaints/liaisons/departments/{department_id}", json={"staff_ids": [staff_id]}
    )
    assert response.status_code == 200, response.text


async def audit_actions(runtime: Runtime, staff_id: int, case_number: str) -> list[str]:
    async with runtime.db.sessions() as session:
        rows = await session.scalars(
            select(AuditEntry.action)
            .where(AuditEntry.staff_id == staff_id, AuditEntry.object_id == case_number)
            .order_by(AuditEntry.id)
        )
        return list(rows)
