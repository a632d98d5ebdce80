"""escalations, internal notes, canned replies; agent messages and post-handoff ratings

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import crm_backend.database.core

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC = crm_backend.database.core.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "escalations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=255), nullable=False),
        sa.Column("priority", sa.String(length=16), nullable=False),
        sa.Column("priority_rank", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("assigned_to_id", sa.Integer(), nullable=True),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("assigned_at", UTC, nullable=True),
        sa.Column("first_response_at", UTC, nullable=True),
        sa.Column("sla_due_at", UTC, nullable=False),
        sa.Column("resolved_at", UTC, nullable=True),
        sa.Column("resolved_by_id", sa.Integer(), nullable=True),
        sa.Column("satisfaction", sa.Integer(), nullable=True),
        sa.Column("satisfaction_at", UTC, nullable=True),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_escalations_conversation_id_conversations"),
        ),
        sa.ForeignKeyConstraint(["team_id"], ["teams.id"], name=op.f("fk_escalations_team_id_teams")),
        sa.ForeignKeyConstraint(
            ["assigned_to_id"], ["staff.id"], name=op.f("fk_escalations_assigned_to_id_staff")
        ),
        sa.ForeignKeyConstraint(
            ["resolved_by_id"], ["staff.id"], name=op.f("fk_escalations_resolved_by_id_staff")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_escalations")),
    )
    op.create_index("ix_escalations_conversation_id", "escalations", ["conversation_id"])
    op.create_index("ix_escalations_assigned_to_id", "escalations", ["assigned_to_id"])
    op.create_index(
        "ix_escalations_queue", "escalations", ["team_id", "status", "priority_rank", "created_at"]
    )
    op.create_index(
        "uq_escalations_open_conversation",
        "escalations",
        ["conversation_id"],
        unique=True,
        sqlite_where=sa.text("status != 'resolved'"),
        postgresql_where=sa.text("status != 'resolved'"),
    )
    op.create_table(
        "conversation_notes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("escalation_id", sa.Integer(), nullable=True),
        sa.Column("author_id", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_conversation_notes_conversation_id_conversations"),
        ),
        sa.ForeignKeyConstraint(
            ["escalation_id"],
            ["escalations.id"],
            name=op.f("fk_conversation_notes_escalation_id_escalations"),
        ),
        sa.ForeignKeyConstraint(
            ["author_id"], ["staff.id"], name=op.f("fk_conversation_notes_author_id_staff")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conversation_notes")),
    )
    op.create_index("ix_conversation_notes_conversation_id", "conversation_notes", ["conversation_id"])
    op.create_table(
        "canned_replies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=64), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["staff.id"], name=op.f("fk_canned_replies_created_by_id_staff")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_canned_replies")),
    )
    with op.batch_alter_table("conversations") as batch:
        batch.add_column(sa.Column("rating_escalation_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            "fk_conversations_rating_escalation_id", "escalations", ["rating_escalation_id"], ["id"]
        )
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("agent_id", sa.Integer(), nullable=True))
        batch.create_foreign_key("fk_messages_agent_id_staff", "staff", ["agent_id"], ["id"])


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.drop_constraint("fk_messages_agent_id_staff", type_="foreignkey")
        batch.drop_column("agent_id")
    with op.batch_alter_table("conversations") as batch:
        batch.drop_constraint("fk_conversations_rating_escalation_id", type_="foreignkey")
        batch.drop_column("rating_escalation_id")
    op.drop_table("canned_replies")
    op.drop_index("ix_conversation_notes_conversation_id", table_name="conversation_notes")
    op.drop_table("conversation_notes")
    op.drop_index("uq_escalations_open_conversation", table_name="escalations")
    op.drop_index("ix_escalations_queue", table_name="escalations")
    op.drop_index("ix_escalations_assigned_to_id", table_name="escalations")
    op.drop_index("ix_escalations_conversation_id", table_name="escalations")
    op.drop_table("escalations")
