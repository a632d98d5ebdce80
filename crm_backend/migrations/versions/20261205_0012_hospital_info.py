"""hospital information: the hospital's own answers (hours, address, parking, visiting, phone, where)

Revision ID: 0012_hospital_info
Revises: 0011_triage_decisions
Create Date: 2026-12-05

The rows are filled from crm_backend/hospital_info/hospital_info.yml the first time the table is
read while empty (crm_backend/hospital_info/service.py), not here.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from crm_backend.database.core import UTCDateTime

revision: str = "0012_hospital_info"
# The lead re-chains this after 0011_triage_decisions at merge.
down_revision: str | None = "0011_triage_decisions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "hospital_info",
        sa.Column("key", sa.String(length=40), primary_key=True),
        sa.Column("title", sa.String(length=40), nullable=False),
        sa.Column("keywords", sa.JSON(), nullable=False),
        sa.Column("answer", sa.Text(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("version", sa.String(length=32), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("hospital_info")
