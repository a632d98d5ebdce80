"""Which patients a staff member may open: the one rule behind every patient endpoint and behind
reading a conversation that was never escalated to the caller's team.

It reads escalations, conversations and 就诊人 links, all at or below this package, so it lives here;
`crm_backend/patient_record/access.py` serves it to the patient views.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Protocol

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_backend.conversations.models import Conversation
from crm_backend.escalations.models import Escalation
from crm_backend.followups.models import FollowupEnrolment
from crm_backend.patients.models import Patient, PatientLink


class Viewer(Protocol):
    """Whoever reads (crm_backend.staff.deps.CurrentStaff and escalations' Actor fit)."""

    @property
    def team_ids(self) -> frozenset[int]: ...

    @property
    def sees_all_teams(self) -> bool: ...


def visible_to(staff: Viewer) -> ColumnElement[bool] | None:
    """Condition on Patient.id for what `staff` may open; None means every patient.

    A conversation of the patient escalated to one of the caller's teams, widened to the patients
    that conversation's WeChat identity manages: a parent escalating about their child lets the
    team open the child's record. A patient enrolled in follow-up with one of the caller's teams
    too: that team calls them and reads their answers, whether or not they ever chatted.
    """
    if staff.sees_all_teams:
        return None
    team_ids = list(staff.team_ids)
    escalated = select(Escalation.conversation_id).where(Escalation.team_id.in_(team_ids))
    own = select(Conversation.patient_id).where(Conversation.id.in_(escalated))
    managed = (
        select(PatientLink.patient_id)
        .join(Conversation, Conversation.identity_id == PatientLink.identity_id)
        .where(Conversation.id.in_(escalated))
    )
    followed = select(FollowupEnrolment.patient_id).where(FollowupEnrolment.team_id.in_(team_ids))
    return or_(Patient.id.in_(own), Patient.id.in_(managed), Patient.id.in_(followed))


async def may_view(session: AsyncSession, staff: Viewer, patient_id: int) -> bool:
    condition = visible_to(staff)
    if condition is None:
        return True
    count = await session.scalar(select(func.count(Patient.id)).where(Patient.id == patient_id, condition))
    return bool(count)


async def viewable(session: AsyncSession, staff: Viewer, patient_ids: Collection[int]) -> set[int]:
    """Which of `patient_ids` exist and `staff` may open (one query, for a file of patients)."""
    if not patient_ids:
        return set()
    statement = select(Patient.id).where(Patient.id.in_(list(patient_ids)))
    condition = visible_to(staff)
    if condition is not None:
        statement = statement.where(condition)
    return set((await session.scalars(statement)).all())
