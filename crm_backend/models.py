"""Imports every domain's models so metadata (Alembic, tests) sees all tables."""

from crm_backend.consent.models import ConsentRecord
from crm_backend.conversations.models import Conversation, InboundMessage, Message
from crm_backend.database.core import Base
from crm_backend.patients.models import Patient, WeChatIdentity

__all__ = ["Base", "ConsentRecord", "Conversation", "InboundMessage", "Message", "Patient", "WeChatIdentity"]
