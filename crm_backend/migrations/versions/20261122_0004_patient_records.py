"""patient records: details with encrypted ID/phone/card numbers, and identity ↔ patient links (就诊人)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22

Columns are added with plain ALTER TABLE (no batch copy): on SQLite a batch copy would drop and
recreate `patients`, which conversations and identities reference.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import crm_backend.database.core

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC = crm_backend.database.core.UTCDateTime(timezone=True)

NEW_PATIENT_COLUMNS = (
    sa.Column("sex", sa.String(length=1), nullable=True),
    sa.Column("birth_date", sa.Date(), nullable=True),
    sa.Column("phone_cipher", sa.String(length=255), nullable=True),
    sa.Column("phone_hash", sa.String(length=64), nullable=True),
    sa.Column("id_number_cipher", sa.String(length=255), nullable=True),
    sa.Column("id_number_hash", sa.String(length=64), nullable=True),
    sa.Column("card_number_cipher", sa.String(length=255), nullable=True),
    sa.Column("card_number_hash", sa.String(length=64), nullable=True),
    sa.Column("updated_at", UTC, nullable=True),
)
SELF_ONLY = "relationship = 'self'"


def upgrade() -> None:
    for column in NEW_PATIENT_COLUMNS:
        op.add_column("patients", column.copy())
    op.create_index("ix_patients_phone_hash", "patients", ["phone_hash"])
    op.create_index("ix_patients_id_number_hash", "patients", ["id_number_hash"], unique=True)
    op.create_index("ix_patients_card_number_hash", "patients", ["card_number_hash"])

    op.create_table(
        "patient_links",
        sa.Column("identity_id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("relationship", sa.String(length=16), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(
            ["identity_id"],
            ["wechat_identities.id"],
            name=op.f("fk_patient_links_identity_id_wechat_identities"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_patient_links_patient_id_patients")
        ),
        sa.PrimaryKeyConstraint("identity_id", "patient_id", name=op.f("pk_patient_links")),
    )
    op.create_index("ix_patient_links_patient_id", "patient_links", ["patient_id"])
    op.create_index(
        "uq_patient_links_one_self",
        "patient_links",
        ["identity_id"],
        unique=True,
        sqlite_where=sa.text(SELF_ONLY),
        postgresql_where=sa.text(SELF_ONLY),
    )


def downgrade() -> None:
    op.drop_index("uq_patient_links_one_self", table_name="patient_links")
    op.drop_index("ix_patient_links_patient_id", table_name="patient_links")
    op.drop_table("patient_links")
    op.drop_index("ix_patients_card_number_hash", table_name="patients")
    op.drop_index("ix_patients_id_number_hash", table_name="patients")
    op.drop_index("ix_patients_phone_hash", table_name="patients")
    # SQLite >= 3.35 drops columns in place (no table copy, so foreign keys into patients stay intact).
    for column in reversed(NEW_PATIENT_COLUMNS):
        op.drop_column("patients", column.name)
