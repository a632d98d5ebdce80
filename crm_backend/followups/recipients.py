"""Who answers a check-in: the patient's own WeChat account, or a family member who manages them.

The same choice as appointment reminders make for a booking staff made (the patient's own account,
else one that manages the patient through 就诊人, `patient_links`), with one difference: an account
that no longer follows ours cannot be reached, so a following family member comes before it. The
dialogue words the check-in about the patient by name when the recipient is family.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import case, select, union
from sqlalchemy.ext.asyncio import AsyncSession

from crm_backend.patients.models import PatientLink, WeChatIdentity


@dataclass(frozen=True, slots=True)
class Recipient:
    identity: WeChatIdentity
    #: True when a family member answers about the patient (not the patient's own account).
    for_someone_else: bool


async def recipient_of(session: AsyncSession, patient_id: int) -> Recipient | None:
    """The account to address: following first, then the patient's own, then the most recently active."""
    # A union of two indexed lookups: "own OR managing" in one condition is a scan of every
    # identity for each check-in started (PostgreSQL cannot use an index for it).
    candidates = union(
        select(WeChatIdentity.id).where(WeChatIdentity.patient_id == patient_id),
        select(PatientLink.identity_id).where(PatientLink.patient_id == patient_id),
    )
    identity = await session.scalar(
        select(WeChatIdentity)
        .where(WeChatIdentity.id.in_(candidates))
        .order_by(
            WeChatIdentity.subscribed.desc(),
            case((WeChatIdentity.patient_id == patient_id, 0), else_=1),
            WeChatIdentity.last_inbound_at.desc().nulls_last(),
            WeChatIdentity.id.desc(),
        )
        .limit(1)
    )
    if identity is None:
        return None
    return Recipient(identity, identity.patient_id != patient_id)
