"""Every message in and out, stored against the patient before anything else happens to it."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm_backend.database.core import Base, UTCDateTime, utcnow


class InboundStatus(enum.StrEnum):
    RECEIVED = "received"
    PROCESSED = "processed"
    FAILED = "failed"


class InboundMessage(Base):
    """A WeChat push exactly as accepted by the webhook: the durable record we ack WeChat on.

    `dedupe_key` is unique so WeChat's retries (and a replayed push) can never be stored twice.
    """

    __tablename__ = "inbound_messages"
    __table_args__ = (Index("ix_inbound_messages_pending", "status", "received_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    dedupe_key: Mapped[str] = mapped_column(String(255), unique=True)
    app_id: Mapped[str] = mapped_column(String(64))
    openid: Mapped[str] = mapped_column(String(128), index=True)
    msg_type: Mapped[str] = mapped_column(String(32))
    event: Mapped[str | None] = mapped_column(String(64))
    wechat_msg_id: Mapped[int | None] = mapped_column(BigInteger)
    create_time: Mapped[int] = mapped_column(BigInteger)
    #: The decrypted push as a flat dict of WeChat's field names.
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[InboundStatus] = mapped_column(String(16), default=InboundStatus.RECEIVED)
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ConversationStatus(enum.StrEnum):
    BOT = "bot"
    #: People have it: patient messages go to the console, not to Rasa.
    ESCALATED = "escalated"
    CLOSED = "closed"


class Conversation(Base):
    __tablename__ = "conversations"
    #: The open conversation is the identity's highest id (route.open_conversation_id): migration 0018.
    __table_args__ = (Index("ix_conversations_identity_id_id", "identity_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    identity_id: Mapped[int] = mapped_column(ForeignKey("wechat_identities.id"))
    channel: Mapped[str] = mapped_column(String(32), default="wechat_oa")
    status: Mapped[ConversationStatus] = mapped_column(String(16), default=ConversationStatus.BOT)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_message_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: Set after an escalation is resolved: the next 1-5 answer rates that escalation.
    rating_escalation_id: Mapped[int | None] = mapped_column(
        ForeignKey("escalations.id", use_alter=True, name="fk_conversations_rating_escalation_id")
    )

    messages: Mapped[list[Message]] = relationship(back_populates="conversation", order_by="Message.id")


class Direction(enum.StrEnum):
    IN = "in"
    OUT = "out"


class SenderType(enum.StrEnum):
    PATIENT = "patient"
    BOT = "bot"
    AGENT = "agent"
    SYSTEM = "system"


class DeliveryStatus(enum.StrEnum):
    RECEIVED = "received"  # inbound: stored from the patient
    PENDING = "pending"  # outbound: waiting for the sender
    #: outbound: stored already claimed by the worker that sends it now (a bot turn's answers);
    #: the sweeper hands one back as PENDING if that worker died before finishing.
    SENDING = "sending"
    SENT = "sent"
    UNDELIVERABLE = "undeliverable"  # WeChat refused for a reason retrying cannot fix (48-hour window...)
    FAILED = "failed"  # retries exhausted


class Message(Base):
    __tablename__ = "messages"
    #: Migration 0018. Partial indexes of the messages still to send and being sent: an index led
    #: by the status would also hold an entry for every message sent since the last vacuum.
    __table_args__ = (
        # A conversation's messages one way, in order: the reply window's last message and count.
        Index("ix_messages_conversation_direction_id", "conversation_id", "direction", "id"),
        Index(
            "ix_messages_pending",
            "conversation_id",
            "id",
            postgresql_where=text("direction = 'out' AND delivery_status = 'pending'"),
            sqlite_where=text("direction = 'out' AND delivery_status = 'pending'"),
        ),
        Index(
            "ix_messages_sending",
            "created_at",
            postgresql_where=text("direction = 'out' AND delivery_status = 'sending'"),
            sqlite_where=text("direction = 'out' AND delivery_status = 'sending'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id"))
    direction: Mapped[Direction] = mapped_column(String(8))
    sender_type: Mapped[SenderType] = mapped_column(String(16))
    msg_type: Mapped[str] = mapped_column(String(32), default="text")
    content: Mapped[str] = mapped_column(Text, default="")
    #: Buttons, media ids and other structured parts of the message.
    extra: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    wechat_msg_id: Mapped[int | None] = mapped_column(BigInteger)
    #: The push this message came from; unique so reprocessing a push never stores it twice.
    inbound_id: Mapped[int | None] = mapped_column(ForeignKey("inbound_messages.id"), unique=True)
    #: For answers: the inbound push they answer (lets a reprocessed push reuse stored answers).
    reply_to_inbound_id: Mapped[int | None] = mapped_column(ForeignKey("inbound_messages.id"), index=True)
    #: The staff member who wrote an agent message.
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    delivery_status: Mapped[DeliveryStatus] = mapped_column(String(16))
    delivery_error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    conversation: Mapped[Conversation] = relationship(back_populates="messages")
