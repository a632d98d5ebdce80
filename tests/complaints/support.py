"""Helpers for the complaint tests: a complainant with a WeChat identity and a conversation, and
cases registered as the bot registers them."""

from __future__ import annotations

from datetime import UTC, datetime

from crm_backend.complaints.models import Complaint
from crm_backend.complaints.service import ComplaintIntake, register_case
from crm_backend.conversations.service import current_conversation
from crm_backend.patients.models import WeChatIdentity
from crm_backend.runtime import Runtime
from tests.followups.enrolment_support import local, make_patient

__all__ = ["Complainant", "complainant", "intake", "local", "registered"]


class Complainant:
    def __init__(self, patient_id: int, identity_id: int, conversation_id: int) -> None:
        self.patient_id = patient_id
        self.identity_id = identity_id
        self.conversation_id = conversation_id


async def complainant(runtime: Runtime, *, last_inbound_at: datetime | None = None) -> Complainant:
    """A patient writing from their own WeChat identity, with an open conversation."""
    patient_id, identity_id = await make_patient(
        runtime, last_inbound_at=last_inbound_at or datetime.now(UTC)
    )
    assert identity_id is not None
    async with runtime.db.sessions() as session:
        identity = await session.get(WeChatIdentity, identity_id)
        assert identity is not None
        conversation = await current_conversation(session, identity, datetime.now(UTC))
        await session.commit()
        return Complainant(patient_id, identity_id, conversation.id)


def intake(**values: object) -> ComplaintIntake:
    fields: dict[str, object] = {
        "kind": "complaint",
        "what": "挂号后在门诊等了三个小时，没人说明原因",
        "when_text": "上周三上午",
        "where_department": "心内科",
        "wish": "希望改进叫号",
    }
    return ComplaintIntake.model_validate({**fields, **values})


async def registered(
    runtime: Runtime, who: Complainant, *, at: datetime | None = None, by: str = "bot", **values: object
) -> Complaint:
    """A case registered from the complainant's chat at `at` (now by default), committed."""
    async with runtime.db.sessions() as session:
        case = await register_case(session, who.patient_id, who.conversation_id, intake(**values), by, now=at)
        await session.commit()
        return case
