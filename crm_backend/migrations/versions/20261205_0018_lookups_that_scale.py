"""conversations by identity and id; messages by conversation, direction and id; pending and
sending messages in partial indexes

Revision ID: 0018_lookups_that_scale
Revises: 0017_complaint_intake_key
Create Date: 2026-12-05

Found with the follow-up dispatch bench (10,000 check-ins), where PostgreSQL used as much CPU as the
workers and every push's acknowledgement got slower as the morning went on:

- The patient's open conversation is `max(id)` of their conversations, read with every turn. With
  an index on identity_id alone, the plan prepared once for every turn walked the primary key
  backwards through everybody's conversations (about half of them on each turn). The index on
  (identity_id, id) finds the last one at once.
- A conversation's pending answers were read through the outbox index, which starts with the
  delivery status. Every message sent leaves an entry there until the next vacuum, so each read
  walked thousands of them. Pending and sending messages now have partial indexes of their own:
  by conversation for delivery (and the sweeper), by age for the sweeper's stale claims.
- Without that index, the reply window's last message from the patient and its count of answers
  since (read for every check-in started and every dialogue turn) scanned every message. Messages
  are indexed by (conversation_id, direction, id), which also serves what the index on
  conversation_id alone did.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018_lookups_that_scale"
down_revision: str | None = "0017_complaint_intake_key"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PENDING = sa.text("direction = 'out' AND delivery_status = 'pending'")
SENDING = sa.text("direction = 'out' AND delivery_status = 'sending'")


def upgrade() -> None:
    op.create_index("ix_conversations_identity_id_id", "conversations", ["identity_id", "id"])
    op.drop_index("ix_conversations_identity_id", table_name="conversations")
    op.create_index(
        "ix_messages_pending",
        "messages",
        ["conversation_id", "id"],
        postgresql_where=PENDING,
        sqlite_where=PENDING,
    )
    op.create_index(
        "ix_messages_sending", "messages", ["created_at"], postgresql_where=SENDING, sqlite_where=SENDING
    )
    op.drop_index("ix_messages_outbox", table_name="messages")
    op.create_index(
        "ix_messages_conversation_direction_id", "messages", ["conversation_id", "direction", "id"]
    )
    op.drop_index("ix_messages_conversation_id", table_name="messages")


def downgrade() -> None:
    op.create_index("ix_messages_conversation_id", "messages", ["conversation_id"])
    op.drop_index("ix_messages_conversation_direction_id", table_name="messages")
    op.create_index("ix_messages_outbox", "messages", ["direction", "delivery_status", "created_at"])
    op.drop_index("ix_messages_sending", table_name="messages")
    op.drop_index("ix_messages_pending", table_name="messages")
    op.create_index("ix_conversations_identity_id", "conversations", ["identity_id"])
    op.drop_index("ix_conversations_identity_id_id", table_name="conversations")
