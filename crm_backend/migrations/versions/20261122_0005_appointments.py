"""appointments: departments, doctors, bookable half-day sessions (schedules) and appointments

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22

New tables only, so SQLite needs no batch copy. The CHECK constraint `booked_count <= capacity` and the
partial unique index on booked appointments are what keep concurrent bookings correct.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import crm_backend.database.core

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC = crm_backend.database.core.UTCDateTime(timezone=True)
BOOKED_ONLY = "status = 'booked'"


def upgrade() -> None:
    op.create_table(
        "departments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("patient_name", sa.String(length=64), nullable=False),
        sa.Column("aliases", sa.JSON(), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_departments")),
        sa.UniqueConstraint("code", name=op.f("uq_departments_code")),
    )
    op.create_table(
        "doctors",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("department_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("title", sa.String(length=32), nullable=False),
        sa.Column("specialty", sa.String(length=255), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(
            ["department_id"], ["departments.id"], name=op.f("fk_doctors_department_id_departments")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_doctors")),
        sa.UniqueConstraint("department_id", "name", name=op.f("uq_doctors_department_id_name")),
    )
    op.create_index("ix_doctors_department_id", "doctors", ["department_id"])
    op.create_table(
        "schedules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("doctor_id", sa.Integer(), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("half_day", sa.String(length=2), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("booked_count", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("updated_at", UTC, nullable=True),
        sa.CheckConstraint("booked_count <= capacity", name=op.f("ck_schedules_booked_within_capacity")),
        sa.CheckConstraint("booked_count >= 0", name=op.f("ck_schedules_booked_not_negative")),
        sa.CheckConstraint("half_day IN ('am', 'pm')", name=op.f("ck_schedules_half_day_valid")),
        sa.CheckConstraint("status IN ('open', 'closed')", name=op.f("ck_schedules_status_valid")),
        sa.ForeignKeyConstraint(["doctor_id"], ["doctors.id"], name=op.f("fk_schedules_doctor_id_doctors")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_schedules")),
        sa.UniqueConstraint(
            "doctor_id", "date", "half_day", name=op.f("uq_schedules_doctor_id_date_half_day")
        ),
    )
    op.create_index("ix_schedules_date", "schedules", ["date", "half_day"])
    op.create_table(
        "appointments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("schedule_id", sa.Integer(), nullable=False),
        sa.Column("booked_by_identity_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("cancelled_at", UTC, nullable=True),
        sa.CheckConstraint(
            "status IN ('booked', 'cancelled', 'completed')", name=op.f("ck_appointments_status_valid")
        ),
        sa.ForeignKeyConstraint(
            ["booked_by_identity_id"],
            ["wechat_identities.id"],
            name=op.f("fk_appointments_booked_by_identity_id_wechat_identities"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_appointments_patient_id_patients")
        ),
        sa.ForeignKeyConstraint(
            ["schedule_id"], ["schedules.id"], name=op.f("fk_appointments_schedule_id_schedules")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_appointments")),
    )
    op.create_index("ix_appointments_patient_id", "appointments", ["patient_id"])
    op.create_index("ix_appointments_schedule_id", "appointments", ["schedule_id"])
    op.create_index(
        "uq_appointments_booked_patient_schedule",
        "appointments",
        ["patient_id", "schedule_id"],
        unique=True,
        sqlite_where=sa.text(BOOKED_ONLY),
        postgresql_where=sa.text(BOOKED_ONLY),
    )


def downgrade() -> None:
    op.drop_index("uq_appointments_booked_patient_schedule", table_name="appointments")
    op.drop_index("ix_appointments_schedule_id", table_name="appointments")
    op.drop_index("ix_appointments_patient_id", table_name="appointments")
    op.drop_table("appointments")
    op.drop_index("ix_schedules_date", table_name="schedules")
    op.drop_table("schedules")
    op.drop_index("ix_doctors_department_id", table_name="doctors")
    op.drop_table("doctors")
    op.drop_table("departments")
