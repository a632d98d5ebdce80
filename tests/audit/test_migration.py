"""0007 chains the entries already in the log, keeps the append-only triggers, and goes back down."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from crm_backend.audit import service as audit
from crm_backend.database.core import Database, UTCDateTime
from tests.audit.conftest import DB_PREFIX
from tests.audit.test_chain import verify
from tests.support.postgres import alembic, drop_postgres, recreate_postgres

BEFORE = "0006"
OLD_ROWS = 25

#: audit_log as revision 0006 and the application of that time wrote it.
old_log = sa.table(
    "audit_log",
    sa.column("at", UTCDateTime(timezone=True)),
    sa.column("staff_id", sa.Integer()),
    sa.column("action", sa.String()),
    sa.column("object_type", sa.String()),
    sa.column("object_id", sa.String()),
    sa.column("patient_id", sa.Integer()),
    sa.column("ip", sa.String()),
    sa.column("user_agent", sa.String()),
    sa.column("detail", sa.JSON()),
)


@pytest.fixture(params=["sqlite", "postgresql"])
async def url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'carebridge.db'}"
        return
    name = f"{DB_PREFIX}_migration"
    yield await recreate_postgres(name)
    await drop_postgres(name)


async def _refuses_edits(db: Database) -> None:
    for statement in ("UPDATE audit_log SET action = 'forged'", "DELETE FROM audit_log"):
        async with db.engine.connect() as conn:
            with pytest.raises(DBAPIError, match="append-only"):
                await conn.execute(sa.text(statement))
            await conn.rollback()


async def test_existing_entries_are_chained_and_stay_append_only(url: str):
    alembic(url, "upgrade", BEFORE)
    db = Database(url)
    try:
        start = datetime(2026, 11, 1, 8, 0, 0, 123456, tzinfo=UTC)
        async with db.engine.begin() as conn:
            await conn.execute(
                old_log.insert(),
                [
                    {
                        "at": start + timedelta(minutes=n),
                        "staff_id": None,
                        "action": "patient.view",
                        "object_type": "patient",
                        "object_id": str(n),
                        "patient_id": n,
                        "ip": "10.0.0.1",
                        "user_agent": "Mozilla/5.0 微信",
                        "detail": {"fields": ["电话"], "n": n} if n % 2 else None,
                    }
                    for n in range(OLD_ROWS)
                ],
            )
        alembic(url, "upgrade", "head")
        alembic(url, "check")
        await db.engine.dispose()

        report = await verify(db, batch=7)
        assert report.ok, report.summary()
        assert report.checked == OLD_ROWS
        await _refuses_edits(db)

        async with db.sessions() as session:
            await audit.record(session, staff_id=None, action="login", object_type="staff", object_id=1)
            await session.commit()
        report = await verify(db)
        assert report.ok and report.checked == OLD_ROWS + 1

        alembic(url, "downgrade", BEFORE)
        await db.engine.dispose()
        async with db.engine.connect() as conn:
            assert await conn.scalar(sa.text("SELECT count(*) FROM audit_log")) == OLD_ROWS + 1
            columns = (await conn.execute(sa.text("SELECT * FROM audit_log"))).keys()
            assert "entry_hash" not in columns
        await _refuses_edits(db)
        alembic(url, "upgrade", "head")  # and up again, chaining all of them
        await db.engine.dispose()
        assert (await verify(db)).checked == OLD_ROWS + 1
        await _refuses_edits(db)
    finally:
        await db.dispose()
