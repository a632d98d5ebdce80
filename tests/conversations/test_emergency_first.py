"""An emergency is answered first, even behind a message that would wait for a bot that is down:
the 120 advice goes out now, and the earlier question then goes to the nurses who hold the chat."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from crm_backend.consent.models import HEALTH_INFORMATION, ConsentRecord
from crm_backend.conversations.models import Conversation, InboundMessage, Message, SenderType
from crm_backend.conversations.processing import Answered, InboundProcessor
from crm_backend.database.core import Database
from crm_backend.domains import subscribe_listeners
from crm_backend.patients.models import WeChatIdentity
from crm_backend.runtime import Runtime
from tests.conversations.conftest import REDIS_URL, new_push
from tests.support.api import api_settings
from tests.support.stack import free_port

FATHER = "我爸胸口疼得厉害还出冷汗"


async def test_an_emergency_is_answered_while_an_earlier_message_waits_for_the_bot(
    db: Database, database_url: str
) -> None:
    first_id, conversation_id = await new_push(db, text="我想问一下复诊时间")
    async with db.sessions() as session:
        conversation = await session.get(Conversation, conversation_id)
        assert conversation is not None
        identity = await session.get(WeChatIdentity, conversation.identity_id)
        assert identity is not None
        session.add(
            ConsentRecord(
                identity_id=identity.id,
                patient_id=identity.patient_id,
                purpose=HEALTH_INFORMATION,
                granted=True,
                notice_version="2026-11",
                decided_at=datetime.now(UTC) - timedelta(hours=1),
            )
        )
        later = InboundMessage(
            dedupe_key=f"emergency-first-{first_id}",
            app_id=identity.app_id,
            openid=identity.openid,
            msg_type="text",
            create_time=int(datetime.now(UTC).timestamp()),
            payload={"Content": FATHER},
        )
        session.add(later)
        await session.commit()
        app_id, openid = identity.app_id, identity.openid

    delivered: list[Answered] = []

    async def deliver(answered: Answered) -> None:
        delivered.append(answered)

    # Rasa is down (nothing listens where the runtime looks for it): the first message must wait.
    down = f"http://127.0.0.1:{free_port()}"
    runtime = Runtime.create(api_settings(database_url, REDIS_URL, RASA_URLS=down, ACTION_SERVER_URLS=down))
    subscribe_listeners(runtime)
    try:
        await InboundProcessor(runtime).process_patient(app_id, openid, deliver)
    finally:
        await runtime.close()

    async with db.sessions() as session:
        system = (
            await session.scalars(
                select(Message.content).where(
                    Message.conversation_id == conversation_id, Message.sender_type == SenderType.SYSTEM
                )
            )
        ).all()
        first = await session.scalar(select(Message).where(Message.inbound_id == first_id))
    assert delivered, "the emergency's answer was handed to the sender"
    assert any(text.startswith("这可能是急症，请立即拨打120") for text in system)
    # Not lost and not stuck behind the bot: stored in the chat the nurses now hold.
    assert first is not None and first.sender_type == SenderType.PATIENT
