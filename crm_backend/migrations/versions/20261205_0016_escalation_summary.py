"""escalations: what the patient said that raised one

Revision ID: 0016_escalation_summary
Revises: 0015_complaints
Create Date: 2026-12-05

A safety risk read during a complaint's intake is escalated before the patient confirms anything,
so no case holds their words yet: the escalation keeps them for staff.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016_escalation_summary"
down_revision: str | None = "0015_complaints"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("escalations", sa.Column("summary", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("escalations", "summary")
