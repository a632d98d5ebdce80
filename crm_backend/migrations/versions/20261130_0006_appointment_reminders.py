"""appointment reminders: one row per reminder, claimed before sending, with its outcome

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30

A new table only, so SQLite needs no batch copy. The unique (appointment_id, kind) is what lets two
workers race for the same reminder and only one of them send it.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import crm_backend.database.core

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC = crm_backend.database.core.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "appointment_reminders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("appointment_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=True),
        sa.Column("identity_id", sa.Integer(), nullable=True),
        sa.Column("message_id", sa.Integer(), nullable=True),
        sa.Column("reason", sa.String(length=255), nullable=True),
        sa.Column("errcode", sa.Integer(), nullable=True),
        sa.Column("errmsg", sa.String(length=255), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("claimed_at", UTC, nullable=False),
        sa.Column("finished_at", UTC, nullable=True),
        sa.Column("created_at", UTC, nullable=False),
        sa.CheckConstraint(
            "status IN ('claimed', 'sent', 'failed', 'skipped')",
            name=op.f("ck_appointment_reminders_status_valid"),
        ),
        sa.CheckConstraint(
            "channel IN ('custom', 'template')", name=op.f("ck_appointment_reminders_channel_valid")
        ),
        sa.ForeignKeyConstraint(
            ["appointment_id"],
            ["appointments.id"],
            name=op.f("fk_appointment_reminders_appointment_id_appointments"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["identity_id"],
            ["wechat_identities.id"],
            name=op.f("fk_appointment_reminders_identity_id_wechat_identities"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            name=op.f("fk_appointment_reminders_message_id_messages"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_appointment_reminders")),
        sa.UniqueConstraint(
            "appointment_id", "kind", name=op.f("uq_appointment_reminders_appointment_id_kind")
        ),
    )
    op.create_index("ix_appointment_reminders_status", "appointment_reminders", ["status", "claimed_at"])


def downgrade() -> None:
    op.drop_index("ix_appointment_reminders_status", table_name="appointment_reminders")
    op.drop_table("appointment_reminders")
