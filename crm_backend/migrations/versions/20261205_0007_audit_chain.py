"""audit log hash chain: prev_hash and entry_hash on every entry, and the one-row chain head

Revision ID: 0007_audit_chain
Revises: 0006
Create Date: 2026-12-05

Existing entries are chained in id order with crm_backend/audit/chain.py (format version 1, which
never changes). Writing the hashes into existing rows needs the append-only triggers out of the way,
so they are dropped for the backfill and created again afterwards, on both backends; on SQLite the
NOT NULL change is a batch rebuild of audit_log, which drops triggers too, so they are created after
it. The function behind the PostgreSQL triggers and its TRUNCATE trigger stay as migration 0002 made
them.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import crm_backend.database.core
from crm_backend.audit.chain import GENESIS, EntryContent, entry_hash

revision: str = "0007_audit_chain"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ENTRY_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
BATCH = 1000

PG_TRIGGER = (
    "CREATE TRIGGER audit_log_no_update_delete BEFORE UPDATE OR DELETE ON audit_log "
    "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()"
)
SQLITE_TRIGGERS = tuple(
    f"CREATE TRIGGER audit_log_no_{verb.lower()} BEFORE {verb} ON audit_log "
    "BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END"
    for verb in ("UPDATE", "DELETE")
)

#: The columns as the application reads them, so `at` and `detail` hash as they do at run time.
audit_log = sa.table(
    "audit_log",
    sa.column("id", ENTRY_ID),
    sa.column("at", crm_backend.database.core.UTCDateTime(timezone=True)),
    sa.column("staff_id", sa.Integer()),
    sa.column("action", sa.String()),
    sa.column("object_type", sa.String()),
    sa.column("object_id", sa.String()),
    sa.column("patient_id", sa.Integer()),
    sa.column("ip", sa.String()),
    sa.column("user_agent", sa.String()),
    sa.column("detail", sa.JSON()),
    sa.column("prev_hash", sa.String()),
    sa.column("entry_hash", sa.String()),
)


def _drop_update_delete_triggers(dialect: str) -> None:
    if dialect == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_update_delete ON audit_log")
    else:
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_update")
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_delete")


def _create_update_delete_triggers(dialect: str) -> None:
    for statement in (PG_TRIGGER,) if dialect == "postgresql" else SQLITE_TRIGGERS:
        op.execute(statement)


def _chain_existing_rows() -> tuple[int | None, str]:
    """Hash every entry in id order, a batch at a time; returns the last entry's id and hash."""
    bind = op.get_bind()
    last_id: int | None = None
    prev = GENESIS
    while True:
        query = sa.select(audit_log).order_by(audit_log.c.id).limit(BATCH)
        if last_id is not None:
            query = query.where(audit_log.c.id > last_id)
        rows = bind.execute(query).all()
        if not rows:
            return last_id, prev
        updates = []
        for row in rows:
            digest = entry_hash(EntryContent.of(row), prev)
            updates.append({"row_id": row.id, "prev": prev, "digest": digest})
            prev, last_id = digest, row.id
        bind.execute(
            audit_log.update()
            .where(audit_log.c.id == sa.bindparam("row_id"))
            .values(prev_hash=sa.bindparam("prev"), entry_hash=sa.bindparam("digest")),
            updates,
        )


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    chain_head = op.create_table(
        "audit_chain_head",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("last_id", ENTRY_ID, nullable=True),
        sa.Column("last_hash", sa.String(length=64), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_audit_chain_head_single_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_chain_head")),
    )
    op.add_column("audit_log", sa.Column("prev_hash", sa.String(length=64), nullable=True))
    op.add_column("audit_log", sa.Column("entry_hash", sa.String(length=64), nullable=True))

    _drop_update_delete_triggers(dialect)
    last_id, last_hash = _chain_existing_rows()
    with op.batch_alter_table("audit_log") as batch:
        batch.alter_column("prev_hash", existing_type=sa.String(length=64), nullable=False)
        batch.alter_column("entry_hash", existing_type=sa.String(length=64), nullable=False)
    _create_update_delete_triggers(dialect)

    op.bulk_insert(chain_head, [{"id": 1, "last_id": last_id, "last_hash": last_hash}])


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.drop_table("audit_chain_head")
    _drop_update_delete_triggers(dialect)
    with op.batch_alter_table("audit_log") as batch:
        batch.drop_column("entry_hash")
        batch.drop_column("prev_hash")
    _create_update_delete_triggers(dialect)
