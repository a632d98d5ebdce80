"""complaints: the chat intake's key, so a retried registration finds its case

Revision ID: 0017_complaint_intake_key
Revises: 0016_escalation_summary
Create Date: 2026-12-05

The action server gives up on the CRM after its timeout while the registration may still commit;
the patient's next 确认 sends the same record again with the same key.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017_complaint_intake_key"
down_revision: str | None = "0016_escalation_summary"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("complaints", sa.Column("intake_key", sa.String(length=160), nullable=True))
    op.create_index("uq_complaints_intake_key", "complaints", ["intake_key"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_complaints_intake_key", table_name="complaints")
    op.drop_column("complaints", "intake_key")
