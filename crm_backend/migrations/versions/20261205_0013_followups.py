"""follow-up: plans and their versions, enrolments, check-ins, answers, sends and phone calls

Revision ID: 0013_followups
Revises: 0012_hospital_info
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import crm_backend.database.core

revision: str = "0013_followups"
down_revision: str | None = "0012_hospital_info"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "followup_plans",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", crm_backend.database.core.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_followup_plans")),
        sa.UniqueConstraint("code", name=op.f("uq_followup_plans_code")),
    )
    op.create_table(
        "followup_plan_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("created_by_staff_id", sa.Integer(), nullable=True),
        sa.Column("created_at", crm_backend.database.core.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by_staff_id"],
            ["staff.id"],
            name=op.f("fk_followup_plan_versions_created_by_staff_id_staff"),
        ),
        sa.ForeignKeyConstraint(
            ["plan_id"], ["followup_plans.id"], name=op.f("fk_followup_plan_versions_plan_id_followup_plans")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_followup_plan_versions")),
        sa.UniqueConstraint("plan_id", "version", name="uq_followup_plan_version"),
    )
    with op.batch_alter_table("followup_plan_versions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_followup_plan_versions_plan_id"), ["plan_id"], unique=False)

    op.create_table(
        "followup_enrolments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("plan_version_id", sa.Integer(), nullable=False),
        sa.Column("anchor_date", sa.Date(), nullable=False),
        sa.Column("discharged_on", sa.Date(), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=False),
        sa.Column("attending_doctor", sa.String(length=64), nullable=False),
        sa.Column("procedure", sa.String(length=200), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("encounter_key", sa.String(length=255), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("stop_reason", sa.String(length=16), nullable=True),
        sa.Column("stop_note", sa.String(length=300), nullable=False),
        sa.Column("lost_to_followup", sa.Boolean(), nullable=False),
        sa.Column("created_by_staff_id", sa.Integer(), nullable=True),
        sa.Column("created_at", crm_backend.database.core.UTCDateTime(timezone=True), nullable=False),
        sa.Column("status_changed_at", crm_backend.database.core.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["created_by_staff_id"],
            ["staff.id"],
            name=op.f("fk_followup_enrolments_created_by_staff_id_staff"),
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_followup_enrolments_patient_id_patients")
        ),
        sa.ForeignKeyConstraint(
            ["plan_version_id"],
            ["followup_plan_versions.id"],
            name=op.f("fk_followup_enrolments_plan_version_id_followup_plan_versions"),
        ),
        sa.ForeignKeyConstraint(["team_id"], ["teams.id"], name=op.f("fk_followup_enrolments_team_id_teams")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_followup_enrolments")),
        sa.UniqueConstraint("encounter_key", name=op.f("uq_followup_enrolments_encounter_key")),
    )
    with op.batch_alter_table("followup_enrolments", schema=None) as batch_op:
        batch_op.create_index("ix_followup_enrolments_discharged", ["discharged_on"], unique=False)
        batch_op.create_index(batch_op.f("ix_followup_enrolments_patient_id"), ["patient_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_followup_enrolments_plan_version_id"), ["plan_version_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_followup_enrolments_status"), ["status"], unique=False)
        batch_op.create_index(batch_op.f("ix_followup_enrolments_team_id"), ["team_id"], unique=False)

    op.create_table(
        "followup_checkins",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("enrolment_id", sa.Integer(), nullable=False),
        sa.Column("time_point", sa.Integer(), nullable=False),
        sa.Column("day", sa.Integer(), nullable=False),
        sa.Column("due_at", crm_backend.database.core.UTCDateTime(timezone=True), nullable=False),
        sa.Column("window_ends_at", crm_backend.database.core.UTCDateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("claimed_at", crm_backend.database.core.UTCDateTime(timezone=True), nullable=True),
        sa.Column("claims", sa.Integer(), nullable=False),
        sa.Column("identity_id", sa.Integer(), nullable=True),
        sa.Column("started_via", sa.String(length=16), nullable=True),
        sa.Column("started_at", crm_backend.database.core.UTCDateTime(timezone=True), nullable=True),
        sa.Column("postponed_until", crm_backend.database.core.UTCDateTime(timezone=True), nullable=True),
        sa.Column("reminded_at", crm_backend.database.core.UTCDateTime(timezone=True), nullable=True),
        sa.Column("channel", sa.String(length=16), nullable=True),
        sa.Column("answered_at", crm_backend.database.core.UTCDateTime(timezone=True), nullable=True),
        sa.Column("worst_flag", sa.String(length=16), nullable=True),
        sa.Column("first_contact_at", crm_backend.database.core.UTCDateTime(timezone=True), nullable=True),
        sa.Column("reason", sa.String(length=255), nullable=False),
        sa.ForeignKeyConstraint(
            ["enrolment_id"],
            ["followup_enrolments.id"],
            name=op.f("fk_followup_checkins_enrolment_id_followup_enrolments"),
        ),
        sa.ForeignKeyConstraint(
            ["identity_id"],
            ["wechat_identities.id"],
            name=op.f("fk_followup_checkins_identity_id_wechat_identities"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_followup_checkins")),
        sa.UniqueConstraint("enrolment_id", "time_point", name="uq_followup_checkin_time_point"),
    )
    with op.batch_alter_table("followup_checkins", schema=None) as batch_op:
        batch_op.create_index("ix_followup_checkins_due", ["status", "due_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_followup_checkins_enrolment_id"), ["enrolment_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_followup_checkins_worst_flag"), ["worst_flag"], unique=False)

    op.create_table(
        "followup_answers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("checkin_id", sa.Integer(), nullable=False),
        sa.Column("question", sa.String(length=40), nullable=False),
        sa.Column("value", sa.JSON(), nullable=False),
        sa.Column("text", sa.String(length=1000), nullable=False),
        sa.Column("flag", sa.String(length=16), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("answered_by_identity_id", sa.Integer(), nullable=True),
        sa.Column("answered_by_staff_id", sa.Integer(), nullable=True),
        sa.Column("created_at", crm_backend.database.core.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["answered_by_identity_id"],
            ["wechat_identities.id"],
            name=op.f("fk_followup_answers_answered_by_identity_id_wechat_identities"),
        ),
        sa.ForeignKeyConstraint(
            ["answered_by_staff_id"],
            ["staff.id"],
            name=op.f("fk_followup_answers_answered_by_staff_id_staff"),
        ),
        sa.ForeignKeyConstraint(
            ["checkin_id"],
            ["followup_checkins.id"],
            name=op.f("fk_followup_answers_checkin_id_followup_checkins"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_followup_answers")),
        sa.UniqueConstraint("checkin_id", "question", name="uq_followup_answer_question"),
    )
    with op.batch_alter_table("followup_answers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_followup_answers_checkin_id"), ["checkin_id"], unique=False)

    op.create_table(
        "followup_calls",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("checkin_id", sa.Integer(), nullable=False),
        sa.Column("staff_id", sa.Integer(), nullable=False),
        sa.Column("reached", sa.Boolean(), nullable=False),
        sa.Column("note", sa.String(length=1000), nullable=False),
        sa.Column("created_at", crm_backend.database.core.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["checkin_id"],
            ["followup_checkins.id"],
            name=op.f("fk_followup_calls_checkin_id_followup_checkins"),
        ),
        sa.ForeignKeyConstraint(["staff_id"], ["staff.id"], name=op.f("fk_followup_calls_staff_id_staff")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_followup_calls")),
    )
    with op.batch_alter_table("followup_calls", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_followup_calls_checkin_id"), ["checkin_id"], unique=False)

    op.create_table(
        "followup_sends",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("checkin_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("identity_id", sa.Integer(), nullable=True),
        sa.Column("message_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error", sa.String(length=255), nullable=False),
        sa.Column("created_at", crm_backend.database.core.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["checkin_id"],
            ["followup_checkins.id"],
            name=op.f("fk_followup_sends_checkin_id_followup_checkins"),
        ),
        sa.ForeignKeyConstraint(
            ["identity_id"],
            ["wechat_identities.id"],
            name=op.f("fk_followup_sends_identity_id_wechat_identities"),
        ),
        sa.ForeignKeyConstraint(
            ["message_id"], ["messages.id"], name=op.f("fk_followup_sends_message_id_messages")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_followup_sends")),
    )
    with op.batch_alter_table("followup_sends", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_followup_sends_checkin_id"), ["checkin_id"], unique=False)


def downgrade() -> None:
    for table in (
        "followup_sends",
        "followup_calls",
        "followup_answers",
        "followup_checkins",
        "followup_enrolments",
        "followup_plan_versions",
        "followup_plans",
    ):
        op.drop_table(table)
