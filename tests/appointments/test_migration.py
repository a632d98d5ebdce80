"""0005 up and down on SQLite and on a scratch PostgreSQL database, with rows in place."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import asyncpg

from tests.support.postgres import POSTGRES_ADMIN_DSN, alembic, drop_postgres, recreate_postgres

SCRATCH_DB = "carebridge_appointments_migration_test"


def test_upgrade_and_downgrade_on_sqlite(tmp_path: Path):
    path = tmp_path / "carebridge.db"
    url = f"sqlite+aiosqlite:///{path}"
    alembic(url, "upgrade", "0004")
    with sqlite3.connect(path) as db:
        db.execute("INSERT INTO patients (id, display_name, created_at) VALUES (1, 'a', '2026-01-01')")
    alembic(url, "upgrade", "0005")
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA foreign_keys=ON")
        db.execute("INSERT INTO departments VALUES (1, 'X', 'x', 'x', '[]', '2026-01-01')")
        db.execute("INSERT INTO doctors VALUES (1, 1, 'd', 't', NULL, 1, '2026-01-01')")
        db.execute(
            "INSERT INTO schedules VALUES (1, 1, '2027-01-01', 'am', 1, 1, 'open', '2026-01-01', NULL)"
        )
        db.execute("INSERT INTO appointments VALUES (1, 1, 1, NULL, 'booked', '2026-01-01', NULL)")
        for statement in (
            "UPDATE schedules SET booked_count = 2",  # over capacity
            "INSERT INTO appointments VALUES (2, 1, 1, NULL, 'booked', '2026-01-01', NULL)",  # twice booked
        ):
            try:
                db.execute(statement)
            except sqlite3.IntegrityError:
                continue
            raise AssertionError(f"accepted: {statement}")
        db.execute("INSERT INTO appointments VALUES (2, 1, 1, NULL, 'cancelled', '2026-01-01', NULL)")
    alembic(url, "downgrade", "0004")
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT id, display_name FROM patients").fetchall() == [(1, "a")]
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert not {"departments", "doctors", "schedules", "appointments"} & tables


async def test_upgrade_downgrade_and_check_on_postgresql():
    url = await recreate_postgres(SCRATCH_DB)
    try:
        alembic(url, "upgrade", "head")
        alembic(url, "check")
        alembic(url, "downgrade", "0004")
        dsn = POSTGRES_ADMIN_DSN.rsplit("/", 1)[0] + f"/{SCRATCH_DB}"
        conn = await asyncpg.connect(dsn)
        try:
            left = await conn.fetch(
                "SELECT tablename FROM pg_tables WHERE tablename = ANY($1::text[])",
                ["departments", "doctors", "schedules", "appointments"],
            )
            assert left == []
        finally:
            await conn.close()
        alembic(url, "upgrade", "head")
        alembic(url, "check")
    finally:
        await drop_postgres(SCRATCH_DB)
