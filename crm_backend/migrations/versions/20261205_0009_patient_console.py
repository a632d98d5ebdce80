"""patient console: a keyed hash of each patient's masked phone, so staff can search by 138****1234

Revision ID: 0009_patient_console
Revises: 0008_conversation_labels
Create Date: 2026-12-05

A nullable column and its index (no batch copy on SQLite). Patients already on file get their hash
here: their phone is decrypted with the deployment's PATIENT_DATA_KEYS and hashed with its
PATIENT_LOOKUP_KEY (the keys the app itself uses), so the migration needs them only when there are
phone numbers to hash; a value no configured key opens is left without one.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_patient_console"
down_revision: str | None = "0008_conversation_labels"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("patients", sa.Column("masked_phone_hash", sa.String(length=64), nullable=True))
    op.create_index("ix_patients_masked_phone_hash", "patients", ["masked_phone_hash"])
    _hash_phones_on_file()


def downgrade() -> None:
    op.drop_index("ix_patients_masked_phone_hash", table_name="patients")
    with op.batch_alter_table("patients") as batch:
        batch.drop_column("masked_phone_hash")


def _hash_phones_on_file() -> None:
    from crm_backend.config import get_settings
    from crm_backend.patients.validation import mask_phone
    from crm_backend.protection import MASKED_PHONE, PHONE, ProtectionError, protector_for

    connection = op.get_bind()
    patients = sa.table(
        "patients", sa.column("id", sa.Integer), sa.column("phone_cipher"), sa.column("masked_phone_hash")
    )
    rows = connection.execute(
        sa.select(patients.c.id, patients.c.phone_cipher).where(patients.c.phone_cipher.is_not(None))
    ).all()
    if not rows:
        return
    protector = protector_for(get_settings())
    for patient_id, token in rows:
        try:
            shown = mask_phone(protector.decrypt(PHONE, token))
        except ProtectionError:  # shown as missing by the app too; not found by the masked form
            continue
        connection.execute(
            patients.update()
            .where(patients.c.id == patient_id)
            .values(masked_phone_hash=protector.lookup_hash(MASKED_PHONE, shown))
        )
