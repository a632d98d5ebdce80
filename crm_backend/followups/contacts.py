"""The first contact after a worrying answer: when care staff first wrote to the patient (or the
family member who answered) after a flagged check-in. The report measures red flag → first contact
and the flagged list drops what was contacted; a reached phone call sets it too (worklists.py).

Only a care role's message counts (staff.models.CARE_ROLES): a customer-service agent answering a
booking question has not looked at a worrying answer. And the message must be about the check-in's
patient. A conversation is the WeChat account's: its own patient, and the 就诊人 whose check-ins
were sent to it. When those flagged check-ins are of one patient, that is whom the nurse contacted;
when they are of several (a daughter managing both parents), the message cannot tell which, so
none is marked and each stays on the flagged list until a call or a message that can tell.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import and_, exists, or_, select, update

from crm_backend.conversations.events import StaffWrote
from crm_backend.followups.models import FollowupAnswer, FollowupCheckin, FollowupEnrolment
from crm_backend.followups.plans import Flag
from crm_backend.runtime import Runtime
from crm_backend.staff.models import CARE_ROLES

log = logging.getLogger(__name__)

FLAGGED = [Flag.amber.value, Flag.red.value, Flag.emergency.value]


def _flagged_in_part_before(moment: datetime) -> Any:
    """Not answered, but a worrying answer was recorded before `moment` (then silence)."""
    return and_(
        FollowupCheckin.answered_at.is_(None),
        exists().where(
            FollowupAnswer.checkin_id == FollowupCheckin.id,
            FollowupAnswer.flag.in_(FLAGGED),
            FollowupAnswer.created_at <= moment,
        ),
    )


async def record_first_contact(runtime: Runtime, event: StaffWrote) -> int:
    """Mark the flagged, uncontacted check-ins the message is about as contacted (once: an
    earlier contact is kept): answered before the message, or flagged by an answer given before it
    (then silence). Returns how many were marked."""
    if event.staff_role not in CARE_ROLES:
        return 0
    async with runtime.db.sessions() as session:
        waiting = (
            await session.execute(
                select(FollowupCheckin.id, FollowupEnrolment.patient_id)
                .join(FollowupEnrolment, FollowupEnrolment.id == FollowupCheckin.enrolment_id)
                .where(
                    FollowupCheckin.first_contact_at.is_(None),
                    FollowupCheckin.worst_flag.in_(FLAGGED),
                    or_(FollowupCheckin.answered_at <= event.at, _flagged_in_part_before(event.at)),
                    or_(
                        FollowupCheckin.identity_id == event.identity_id,
                        FollowupEnrolment.patient_id == event.patient_id,
                    ),
                )
            )
        ).all()
        patients = {patient_id for _, patient_id in waiting}
        if len(patients) != 1:
            if patients:
                log.info(
                    "conversation %s: flagged check-ins of patients %s; the message names none, so "
                    "no first contact is recorded",
                    event.conversation_id,
                    sorted(patients),
                )
            return 0
        result = await session.execute(
            update(FollowupCheckin)
            .where(
                FollowupCheckin.id.in_([checkin_id for checkin_id, _ in waiting]),
                FollowupCheckin.first_contact_at.is_(None),
            )
            .values(first_contact_at=event.at)
            .execution_options(synchronize_session=False)
        )
        await session.commit()
    return result.rowcount or 0  # type: ignore[attr-defined]
