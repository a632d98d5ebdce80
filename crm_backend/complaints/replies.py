"""What the office writes to the patient about a case reaches them in the chat, and the answer is
followed by the bot asking whether they accept it and how satisfied they are.

Both go through the conversation's ordinary paths, never a send of our own: inside WeChat's
customer-service window (conversations/reply_window.py) the message is stored pending in the
patient's current conversation and the outbox delivers it; the question is a dialogue the CRM starts
(conversations/turns.py `start_dialogue`, intent `complaint_outcome` with the entity `case_number`),
which waits behind the patient's own messages and staff, and whose question goes out behind the
answer stored before it (a dialogue's answers are delivered in order with what is pending).
Outside the window the answer travels as the dialogue's template message (COMPLAINT_TEMPLATE_ID)
and the question follows once the patient writes again; with no template configured, the timeline
says the answer did not reach the patient, so the office calls them.
"""

from __future__ import annotations

import enum
import logging
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from crm_backend.complaints.models import CaseKind, Complaint, TimelineKind
from crm_backend.complaints.service import add_entry
from crm_backend.conversations.models import SenderType
from crm_backend.conversations.outgoing import add_outbound
from crm_backend.conversations.reply_window import reply_window
from crm_backend.conversations.service import current_conversation
from crm_backend.conversations.turns import DialogueRequest, TemplateInvite, start_dialogue
from crm_backend.patients.models import WeChatIdentity
from crm_backend.runtime import Runtime

log = logging.getLogger(__name__)

#: The Rasa intent the outcome question starts with (bot/intents/complaints.yml).
OUTCOME_INTENT = "complaint_outcome"
#: Dialogue keys: one outcome question per answer of a case ("complaints:outcome:TS-…:0").
OUTCOME_DIALOGUE = "complaints:outcome:"


class Delivery(enum.StrEnum):
    #: Stored as a customer-service message in the chat; the outbox sends it.
    chat = "chat"
    #: Outside the window: the template message carries it (the outcome dialogue's invitation).
    template = "template"
    #: It cannot reach the patient in WeChat (no identity, window closed and no template).
    not_sent = "not_sent"


def answer_text(complaint: Complaint, answer: str) -> str:
    if complaint.kind == CaseKind.praise:
        return f"【表扬反馈】感谢您的表扬（编号 {complaint.case_number}）。\n{answer}"
    return f"【投诉处理结果】您反映的问题（编号 {complaint.case_number}）处理结果如下：\n{answer}"


def message_text(complaint: Complaint, text: str) -> str:
    return f"【投诉处理进展】编号 {complaint.case_number}：\n{text}"


def answer_invite(template_id: str, complaint: Complaint, answer: str) -> TemplateInvite:
    """The template message that carries the answer outside the window."""
    first = f"您反映的问题（编号 {complaint.case_number}）已有处理结果。"
    remark = "请在公众号回复任意消息，告诉我们您是否接受处理结果。"
    values = {"first": first, "keyword1": complaint.case_number, "keyword2": answer[:180], "remark": remark}
    return TemplateInvite(
        template_id=template_id,
        data={key: {"value": value} for key, value in values.items()},
        text=f"{first}\n{answer}\n{remark}",
    )


async def _identity(session: AsyncSession, complaint: Complaint) -> WeChatIdentity | None:
    if complaint.identity_id is None:
        return None
    identity = await session.get(WeChatIdentity, complaint.identity_id)
    return identity if identity is not None and identity.subscribed else None


async def write_to_patient(
    runtime: Runtime, complaint_id: int, text: str, *, staff_id: int, actor: str, answer: bool
) -> Delivery:
    """Deliver a message or the answer (already recorded, committed) to the complainant.

    An interim message goes out only inside the window (`not_sent` otherwise); the answer falls
    back to the template and is followed by the outcome question (complaints; praise is thanked).
    """
    now = runtime.clock()
    settings = runtime.settings
    async with runtime.db.sessions() as session:
        complaint = await session.get(Complaint, complaint_id)
        assert complaint is not None
        identity = await _identity(session, complaint)
        wording = answer_text(complaint, text) if answer else message_text(complaint, text)
        delivery = Delivery.not_sent
        conversation_id = None
        if identity is not None:
            window = await reply_window(session, identity, now)
            if window.is_open:
                conversation = await current_conversation(session, identity, now)
                message = add_outbound(
                    session,
                    conversation,
                    SenderType.AGENT,
                    wording,
                    agent_id=staff_id,
                    extra={"complaint": complaint.case_number},
                )
                await session.flush()
                conversation_id = conversation.id
                delivery = Delivery.chat
                data = {
                    "delivery": delivery.value,
                    "message_id": message.id,
                    "conversation_id": conversation.id,
                }
            elif answer and settings.complaint_template_id and complaint.kind == CaseKind.complaint:
                # The template travels as the outcome dialogue's invitation (below); praise has
                # no outcome dialogue, so outside the window it is not sent: staff phone.
                delivery = Delivery.template
                data = {"delivery": delivery.value}
            else:
                data = {"delivery": delivery.value, "window": window.state.value}
        else:
            data = {"delivery": delivery.value, "window": "no_wechat_identity"}
        if delivery is not Delivery.not_sent and complaint.first_response_at is None:
            complaint.first_response_at = now
        add_entry(
            session,
            complaint,
            TimelineKind.message,
            actor,
            at=now,
            staff_id=staff_id,
            text=wording if delivery is not Delivery.not_sent else "未能通过微信送达，请电话联系患者",
            data=data,
        )
        reopen_days = settings.complaint_reopen_days
        request = None
        if answer and identity is not None and delivery is not Delivery.not_sent:
            if complaint.kind == CaseKind.complaint:
                request = DialogueRequest(
                    key=f"{OUTCOME_DIALOGUE}{complaint.case_number}:{complaint.reopen_count}",
                    identity_id=identity.id,
                    patient_id=complaint.patient_id,
                    intent=OUTCOME_INTENT,
                    reason=f"complaint {complaint.case_number} answered",
                    expires_at=now + timedelta(days=reopen_days),
                    entities={"case_number": complaint.case_number},
                    template=answer_invite(settings.complaint_template_id, complaint, text)
                    if settings.complaint_template_id
                    else None,
                )
        case_number = complaint.case_number
        await session.commit()
    if conversation_id is not None:
        await runtime.outbound.add({"conversation_id": str(conversation_id)})
    if request is not None:
        await start_dialogue(runtime, request)
    log.info("case %s: %s to the patient (%s)", case_number, "answer" if answer else "message", delivery)
    return delivery
