"""triage decisions: every decision with the rule and data versions, for staff to review

Revision ID: 0011_triage_decisions
Revises: 0010_department_triage
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import crm_backend.database.core

revision: str = "0011_triage_decisions"
down_revision: str | None = "0010_department_triage"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "triage_decisions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("message_id", sa.Integer(), sa.ForeignKey("messages.id"), nullable=True),
        sa.Column("conversation_id", sa.Integer(), sa.ForeignKey("conversations.id"), nullable=True),
        sa.Column("patient_id", sa.Integer(), sa.ForeignKey("patients.id"), nullable=True),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("level", sa.String(length=16), nullable=False),
        sa.Column("red_flags", sa.JSON(), nullable=False),
        sa.Column("departments", sa.JSON(), nullable=False),
        sa.Column("rule_version", sa.String(length=64), nullable=False),
        sa.Column("data_version", sa.String(length=64), nullable=True),
        sa.Column("screen", sa.JSON(), nullable=False),
        sa.Column("recommendation", sa.JSON(), nullable=True),
        sa.Column("answer", sa.String(length=4000), nullable=False),
        sa.Column("created_at", crm_backend.database.core.UTCDateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_triage_decisions_conversation", "triage_decisions", ["conversation_id", "id"])
    op.create_index("ix_triage_decisions_message_id", "triage_decisions", ["message_id"])
    op.create_index("ix_triage_decisions_patient_id", "triage_decisions", ["patient_id"])
    op.create_index("ix_triage_decisions_level", "triage_decisions", ["level"])
    op.create_index("ix_triage_decisions_created_at", "triage_decisions", ["created_at"])


def downgrade() -> None:
    op.drop_table("triage_decisions")
