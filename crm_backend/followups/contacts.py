"""The first contact after a worrying answer: when staff first wrote to the patient (or the family
member who answered) after a flagged check-in. The report measures red flag → first contact; a
reached phone call sets it too (worklists.py)."""

from __future__ import annotations

from sqlalchemy import or_, select, update

from crm_backend.conversations.events import StaffWrote
from crm_backend.followups.models import FollowupCheckin, FollowupEnrolment
from crm_backend.followups.plans import Flag
from crm_backend.runtime import Runtime

FLAGGED = [Flag.amber.value, Flag.red.value, Flag.emergency.value]


async def record_first_contact(runtime: Runtime, event: StaffWrote) -> int:
    """Mark the flagged, answered check-ins of the patient or of the identity staff wrote to as
    contacted (once: an earlier contact is kept). Returns how many were marked."""
    enrolled = select(FollowupEnrolment.id).where(FollowupEnrolment.patient_id == event.patient_id)
    async with runtime.db.sessions() as session:
        result = await session.execute(
            update(FollowupCheckin)
            .where(
                FollowupCheckin.first_contact_at.is_(None),
                FollowupCheckin.worst_flag.in_(FLAGGED),
                FollowupCheckin.answered_at <= event.at,
                or_(
                    FollowupCheckin.identity_id == event.identity_id,
                    FollowupCheckin.enrolment_id.in_(enrolled),
                ),
            )
            .values(first_contact_at=event.at)
            .execution_options(synchronize_session=False)
        )
        await session.commit()
    return result.rowcount or 0  # type: ignore[attr-defined]
