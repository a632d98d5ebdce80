"""department triage: patient-facing description, symptom terms, ages and sex on departments

Revision ID: 0010_department_triage
Revises: 0009_patient_console
Create Date: 2026-12-05

Columns added with constant defaults, so SQLite needs no batch copy. They are filled from
crm_backend/triage/departments.yml by `python -m crm_backend.triage.seed` (only where still empty),
not here: a migration must not depend on a data file that changes with every clinical review.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_department_triage"
down_revision: str | None = "0009_patient_console"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("departments", sa.Column("description", sa.Text(), server_default="", nullable=False))
    op.add_column(
        "departments", sa.Column("symptom_terms", sa.JSON(), server_default=sa.text("'[]'"), nullable=False)
    )
    op.add_column("departments", sa.Column("min_age_years", sa.Integer(), nullable=True))
    op.add_column("departments", sa.Column("max_age_years", sa.Integer(), nullable=True))
    op.add_column("departments", sa.Column("sex", sa.String(length=8), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("departments") as batch:
        for column in ("sex", "max_age_years", "min_age_years", "symptom_terms", "description"):
            batch.drop_column(column)
