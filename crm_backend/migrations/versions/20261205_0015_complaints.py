"""complaints: cases, their timeline and department liaisons; room for the complaints_office role

Revision ID: 0015_complaints
Revises: 0014_followup_checkin_index
Create Date: 2026-12-05

Roles are VARCHAR without a CHECK constraint (staff/models.py), so a new role needs no type change;
`complaints_office` is longer than the 16 characters the column had, so it is widened to 32.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import crm_backend.database.core

revision: str = "0015_complaints"
down_revision: str | None = "0014_followup_checkin_index"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "complaint_liaisons",
        sa.Column("department_id", sa.Integer(), nullable=False),
        sa.Column("staff_id", sa.Integer(), nullable=False),
        sa.Column("created_at", crm_backend.database.core.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["department_id"],
            ["departments.id"],
            name=op.f("fk_complaint_liaisons_department_id_departments"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["staff_id"], ["staff.id"], name=op.f("fk_complaint_liaisons_staff_id_staff"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("department_id", "staff_id", name=op.f("pk_complaint_liaisons")),
    )
    with op.batch_alter_table("complaint_liaisons", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_complaint_liaisons_staff_id"), ["staff_id"], unique=False)

    op.create_table(
        "complaints",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_number", sa.String(length=24), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=True),
        sa.Column("identity_id", sa.Integer(), nullable=True),
        sa.Column("what", sa.Text(), nullable=False),
        sa.Column("when_text", sa.String(length=200), nullable=False),
        sa.Column("when_date", sa.Date(), nullable=True),
        sa.Column("where_department", sa.String(length=64), nullable=True),
        sa.Column("where_ward", sa.String(length=64), nullable=True),
        sa.Column("who", sa.String(length=100), nullable=True),
        sa.Column("wish", sa.Text(), nullable=True),
        sa.Column("safety_risk", sa.Boolean(), nullable=False),
        sa.Column("safety_escalated_at", crm_backend.database.core.UTCDateTime(timezone=True), nullable=True),
        sa.Column("category", sa.String(length=24), nullable=True),
        sa.Column("several_departments", sa.Boolean(), nullable=False),
        sa.Column("department_id", sa.Integer(), nullable=True),
        sa.Column("liaison_staff_id", sa.Integer(), nullable=True),
        sa.Column("registered_by", sa.String(length=64), nullable=False),
        sa.Column("registered_by_staff_id", sa.Integer(), nullable=True),
        sa.Column("registered_at", crm_backend.database.core.UTCDateTime(timezone=True), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("due_at", crm_backend.database.core.UTCDateTime(timezone=True), nullable=False),
        sa.Column("nearing_at", crm_backend.database.core.UTCDateTime(timezone=True), nullable=False),
        sa.Column("official_calendar", sa.Boolean(), nullable=False),
        sa.Column("nearing_flagged_at", crm_backend.database.core.UTCDateTime(timezone=True), nullable=True),
        sa.Column("overdue_flagged_at", crm_backend.database.core.UTCDateTime(timezone=True), nullable=True),
        sa.Column("first_response_at", crm_backend.database.core.UTCDateTime(timezone=True), nullable=True),
        sa.Column("answer", sa.Text(), nullable=True),
        sa.Column("answered_at", crm_backend.database.core.UTCDateTime(timezone=True), nullable=True),
        sa.Column("first_answered_at", crm_backend.database.core.UTCDateTime(timezone=True), nullable=True),
        sa.Column("answered_on_time", sa.Boolean(), nullable=True),
        sa.Column("accepted", sa.Boolean(), nullable=True),
        sa.Column("satisfaction", sa.Integer(), nullable=True),
        sa.Column("replied_at", crm_backend.database.core.UTCDateTime(timezone=True), nullable=True),
        sa.Column("reopen_count", sa.Integer(), nullable=False),
        sa.Column("referral", sa.String(length=16), nullable=True),
        sa.Column("closed_at", crm_backend.database.core.UTCDateTime(timezone=True), nullable=True),
        sa.Column("updated_at", crm_backend.database.core.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_complaints_conversation_id_conversations"),
        ),
        sa.ForeignKeyConstraint(
            ["department_id"], ["departments.id"], name=op.f("fk_complaints_department_id_departments")
        ),
        sa.ForeignKeyConstraint(
            ["identity_id"],
            ["wechat_identities.id"],
            name=op.f("fk_complaints_identity_id_wechat_identities"),
        ),
        sa.ForeignKeyConstraint(
            ["liaison_staff_id"], ["staff.id"], name=op.f("fk_complaints_liaison_staff_id_staff")
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_complaints_patient_id_patients")
        ),
        sa.ForeignKeyConstraint(
            ["registered_by_staff_id"], ["staff.id"], name=op.f("fk_complaints_registered_by_staff_id_staff")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_complaints")),
        sa.UniqueConstraint("case_number", name=op.f("uq_complaints_case_number")),
    )
    with op.batch_alter_table("complaints", schema=None) as batch_op:
        batch_op.create_index("ix_complaints_department_status", ["department_id", "status"], unique=False)
        batch_op.create_index(batch_op.f("ix_complaints_identity_id"), ["identity_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_complaints_patient_id"), ["patient_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_complaints_registered_by_staff_id"), ["registered_by_staff_id"], unique=False
        )
        batch_op.create_index("ix_complaints_status_due", ["status", "due_at"], unique=False)

    op.create_table(
        "complaint_timeline",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("complaint_id", sa.Integer(), nullable=False),
        sa.Column("at", crm_backend.database.core.UTCDateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("staff_id", sa.Integer(), nullable=True),
        sa.Column("from_status", sa.String(length=16), nullable=True),
        sa.Column("to_status", sa.String(length=16), nullable=True),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("data", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["complaint_id"],
            ["complaints.id"],
            name=op.f("fk_complaint_timeline_complaint_id_complaints"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["staff_id"], ["staff.id"], name=op.f("fk_complaint_timeline_staff_id_staff")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_complaint_timeline")),
    )
    with op.batch_alter_table("complaint_timeline", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_complaint_timeline_complaint_id"), ["complaint_id"], unique=False
        )

    with op.batch_alter_table("staff", schema=None) as batch_op:
        batch_op.alter_column(
            "role", existing_type=sa.String(length=16), type_=sa.String(length=32), existing_nullable=False
        )


def downgrade() -> None:
    with op.batch_alter_table("staff", schema=None) as batch_op:
        batch_op.alter_column(
            "role", existing_type=sa.String(length=32), type_=sa.String(length=16), existing_nullable=False
        )

    with op.batch_alter_table("complaint_timeline", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_complaint_timeline_complaint_id"))

    op.drop_table("complaint_timeline")
    with op.batch_alter_table("complaints", schema=None) as batch_op:
        batch_op.drop_index("ix_complaints_status_due")
        batch_op.drop_index(batch_op.f("ix_complaints_registered_by_staff_id"))
        batch_op.drop_index(batch_op.f("ix_complaints_patient_id"))
        batch_op.drop_index(batch_op.f("ix_complaints_identity_id"))
        batch_op.drop_index("ix_complaints_department_status")

    op.drop_table("complaints")
    with op.batch_alter_table("complaint_liaisons", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_complaint_liaisons_staff_id"))

    op.drop_table("complaint_liaisons")
