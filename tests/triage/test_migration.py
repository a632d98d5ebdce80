"""0010_department_triage up and down on SQLite with a department in place (PostgreSQL: the
appointments suite's `alembic check` at head)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.support.postgres import alembic


def test_triage_columns_come_and_go_and_keep_the_department(tmp_path: Path):
    path = tmp_path / "carebridge.db"
    url = f"sqlite+aiosqlite:///{path}"
    alembic(url, "upgrade", "0006")
    with sqlite3.connect(path) as db:
        db.execute(
            "INSERT INTO departments VALUES (1, 'RESP', '呼吸内科', '呼吸内科', '[\"呼吸科\"]', '2026-01-01')"
        )
    alembic(url, "upgrade", "0010_department_triage")
    with sqlite3.connect(path) as db:
        row = db.execute(
            "SELECT code, description, symptom_terms, min_age_years, max_age_years, sex FROM departments"
        ).fetchone()
        assert row == ("RESP", "", "[]", None, None, None)
    alembic(url, "downgrade", "0006")
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT code, aliases FROM departments").fetchall() == [("RESP", '["呼吸科"]')]
        columns = {r[1] for r in db.execute("PRAGMA table_info(departments)")}
        assert "symptom_terms" not in columns


def test_triage_decisions_table_comes_and_goes_and_matches_the_models(tmp_path: Path):
    path = tmp_path / "carebridge.db"
    url = f"sqlite+aiosqlite:///{path}"
    alembic(url, "upgrade", "head")
    alembic(url, "check")
    with sqlite3.connect(path) as db:
        columns = {r[1] for r in db.execute("PRAGMA table_info(triage_decisions)")}
        assert {"message_id", "level", "red_flags", "rule_version", "data_version", "screen"} <= columns
    alembic(url, "downgrade", "0010_department_triage")
    with sqlite3.connect(path) as db:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert "triage_decisions" not in tables and "departments" in tables
