"""不想再收到随访 with no check-in open: which follow-ups the sender answers for, and stopping them.

A WeChat account answers for its own patient record and for the patients it manages (就诊人,
`patient_links`), as recipients.py chooses who is asked. Those patients' active or paused
enrolments are what the account may stop; the bot names them, the patient confirms, and each is
stopped with `enrolment.stop_enrolment` (reason opted_out), which skips its open check-ins and
fails their queued dialogue turns, so nothing more is sent. The bot API is in bot_views.py.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_backend.followups.models import EnrolmentStatus, FollowupEnrolment, FollowupPlanVersion
from crm_backend.followups.plan_service import definition_of
from crm_backend.patients.models import Patient, PatientLink, PatientRelation, WeChatIdentity

#: Enrolments that may still send something, so may be stopped.
RUNNING = (EnrolmentStatus.active, EnrolmentStatus.paused)


@dataclass(frozen=True, slots=True)
class Running:
    """One running enrolment the sender answers for, as the bot names it."""

    enrolment_id: int
    patient_id: int
    relation: PatientRelation
    patient_name: str
    plan_name: str

    @property
    def whose(self) -> str:
        """ "您" for the sender's own follow-up, the patient's name for a family member's."""
        return "您" if self.relation == PatientRelation.SELF else (self.patient_name or "您的家人")


async def relations_of(session: AsyncSession, identity: WeChatIdentity) -> dict[int, PatientRelation]:
    """The patients this account answers for: its own record and the 就诊人 it manages."""
    links = await session.scalars(select(PatientLink).where(PatientLink.identity_id == identity.id))
    relations = {link.patient_id: PatientRelation(link.relationship) for link in links}
    relations[identity.patient_id] = PatientRelation.SELF
    return relations


async def running_for(
    session: AsyncSession, identity: WeChatIdentity, enrolment_ids: list[int] | None = None
) -> list[Running]:
    """The sender's running enrolments (own patient first, then by enrolment), optionally only
    those among `enrolment_ids`."""
    relations = await relations_of(session, identity)
    query = (
        select(FollowupEnrolment, Patient, FollowupPlanVersion)
        .join(Patient, Patient.id == FollowupEnrolment.patient_id)
        .join(FollowupPlanVersion, FollowupPlanVersion.id == FollowupEnrolment.plan_version_id)
        .where(
            FollowupEnrolment.patient_id.in_(list(relations)),
            FollowupEnrolment.status.in_(RUNNING),
        )
        .order_by(FollowupEnrolment.id)
    )
    if enrolment_ids is not None:
        query = query.where(FollowupEnrolment.id.in_(enrolment_ids))
    found = [
        Running(
            enrolment.id,
            patient.id,
            relations[patient.id],
            patient.display_name or "",
            definition_of(version).name,
        )
        for enrolment, patient, version in (await session.execute(query)).all()
    ]
    return sorted(found, key=lambda running: running.relation != PatientRelation.SELF)


async def belongs_to(session: AsyncSession, identity: WeChatIdentity, enrolment_ids: list[int]) -> bool:
    """Whether every enrolment named is one of a patient this account answers for (any status)."""
    relations = await relations_of(session, identity)
    patients = await session.scalars(
        select(FollowupEnrolment.patient_id).where(FollowupEnrolment.id.in_(enrolment_ids))
    )
    found = list(patients)
    return len(found) == len(set(enrolment_ids)) and all(patient in relations for patient in found)


def confirm_text(running: list[Running]) -> str:
    """The question naming whose follow-up would stop: one, or a numbered list to stop all or one."""
    if len(running) == 1:
        only = running[0]
        return (
            f"您要停止{only.whose}的{only.plan_name}吗？停止后不会再发送随访问题。\n"
            "回复“确定”停止，回复“取消”保留。"
        )
    lines = [f"{number}. {item.whose}的{item.plan_name}" for number, item in enumerate(running, start=1)]
    return (
        "您目前有以下术后随访：\n" + "\n".join(lines) + "\n回复“确定”全部停止；只停止其中一项请回复它的序号"
        "（例如“1”）；回复“取消”都保留。"
    )


def chosen_number(text: str, count: int) -> int | None:
    """A reply naming one of `count` listed follow-ups by its number ("2", "第2个"), else None."""
    plain = unicodedata.normalize("NFKC", text).strip().strip("。.！!")
    matched = re.fullmatch(r"第?([1-9])(?:个|项|位)?", plain)
    if matched is None or not 1 <= int(matched.group(1)) <= count:
        return None
    return int(matched.group(1))


def stopped_text(stopped: list[Running]) -> str:
    names = "、".join(dict.fromkeys(f"{item.whose}的{item.plan_name}" for item in stopped))
    return (
        f"好的，已为您停止{names}，之后不会再发送随访消息。"
        "如有不适，请及时就医；需要帮助时，随时回复“人工”联系工作人员。"
    )
