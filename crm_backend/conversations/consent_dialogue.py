"""The consent dialogue: asks for separate consent to process health information (PIPL art. 29),
records the answer, and keeps the request that came before it.

It runs where route.decide says CONSENT, inside the transaction that records the patient's message.
It never reaches Rasa: the bot must not see health information before consent. A patient whose
first message is a request ("帮我挂明天上午的皮肤科") gets the notice and the question; that message
is marked held, and after 同意 it is answered as if it had just arrived. After 不同意 the held
messages are dropped for the bot (they stay in the record, as everything the patient sent).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_backend.consent import service as consent
from crm_backend.consent.models import ConsentRecord
from crm_backend.conversations import route
from crm_backend.conversations.models import Conversation, Direction, Message
from crm_backend.conversations.redaction import unsealed_text
from crm_backend.patients.models import WeChatIdentity
from crm_backend.protection import FieldProtector

#: Message.extra key marking a patient's message kept for the bot until consent is decided.
HOLD_KEY = "consent_hold"
HELD, ANSWERED, DROPPED = "held", "answered", "dropped"

#: The escalation reason of a patient who declined consent and asked for a person.
CONSENT_DECLINED_REASON = "consent_declined"

CONSENT_GRANTED_WITH_REQUEST = "谢谢您的信任，已记录您的同意。下面为您处理刚才的消息。"


@dataclass
class ConsentReply:
    replies: list[str]
    #: Held requests released by 同意, oldest first: each goes to the bot as its own turn.
    for_bot: list[str] = field(default_factory=list)
    #: The reason to hand the chat to people (a patient who declined asks for a person).
    escalate: str | None = None


async def answer(
    session: AsyncSession,
    identity: WeChatIdentity,
    conversation: Conversation,
    message: Message,
    text: str,
    *,
    notice_version: str,
    protector: FieldProtector,
    service_phone: str,
) -> ConsentReply:
    """`service_phone`: the hospital's number, named to a patient the bot cannot serve."""
    decision = await session.scalar(select(route.latest_consent(identity.id)))
    decision = None if decision is None else bool(decision)
    said = consent.read_answer(text)
    # A reprocessed push finds its decision already recorded: it answers again, records nothing twice.
    recorded = (
        await session.scalar(select(ConsentRecord.id).where(ConsentRecord.message_id == message.id))
        if said is not None
        else None
    )

    async def decide(granted: bool) -> None:
        if recorded is None:
            await consent.record_decision(
                session,
                identity,
                granted=granted,
                notice_version=notice_version,
                decided_at=message.created_at,
                message_id=message.id,
            )

    if said is consent.ConsentAnswer.WITHDRAW and decision is True:
        await decide(False)
        return ConsentReply([consent.CONSENT_WITHDRAWN])
    if said is consent.ConsentAnswer.GRANT:
        await decide(True)
        held = await _release(session, conversation, ANSWERED)
        if not held:
            return ConsentReply([consent.CONSENT_GRANTED])
        texts = [unsealed_text(m.content, m.extra, protector) for m in held]
        return ConsentReply([CONSENT_GRANTED_WITH_REQUEST], for_bot=texts)
    if said is not None:  # declined, or withdrawn before ever granting
        await decide(False)
        await _release(session, conversation, DROPPED)
        return ConsentReply([consent.CONSENT_DECLINED.format(phone=service_phone)])
    if decision is None:
        message.extra = {**(message.extra or {}), HOLD_KEY: HELD}
        notice = consent.PRIVACY_NOTICE.format(version=notice_version)
        return ConsentReply([notice, consent.CONSENT_QUESTION])
    if route.asks_for_person(text):
        # The bot may not serve them, people may: staff talk with the patient as they are.
        return ConsentReply([], escalate=CONSENT_DECLINED_REASON)
    return ConsentReply([consent.CONSENT_STILL_DECLINED.format(phone=service_phone)])


async def _release(session: AsyncSession, conversation: Conversation, outcome: str) -> list[Message]:
    """The conversation's held messages, oldest first, now marked with `outcome`."""
    held = list(
        await session.scalars(
            select(Message)
            .where(
                Message.conversation_id == conversation.id,
                Message.direction == Direction.IN,
                Message.extra[HOLD_KEY].as_string() == HELD,
            )
            .order_by(Message.created_at, Message.id)
        )
    )
    for message in held:
        message.extra = {**(message.extra or {}), HOLD_KEY: outcome}
    return held
