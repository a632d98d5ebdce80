"""0004 and 0009 up and down on SQLite with rows in place (PostgreSQL runs them in the session
fixture)."""

from __future__ import annotations

import base64
import sqlite3
from pathlib import Path

import pytest

from crm_backend.protection import MASKED_PHONE, PHONE, AesGcmProtector, parse_data_keys
from tests.support.api import KEY_A, LOOKUP_KEY
from tests.support.postgres import alembic


def test_upgrade_and_downgrade_keep_existing_patients(tmp_path: Path):
    path = tmp_path / "carebridge.db"
    url = f"sqlite+aiosqlite:///{path}"
    alembic(url, "upgrade", "0003")
    with sqlite3.connect(path) as db:
        db.execute("INSERT INTO patients (id, display_name, created_at) VALUES (1, 'a', '2026-01-01')")
        db.execute(
            "INSERT INTO wechat_identities (id, app_id, openid, patient_id, subscribed, created_at)"
            " VALUES (1, 'wx', 'o1', 1, 1, '2026-01-01')"
        )
    alembic(url, "upgrade", "0004")
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA foreign_keys=ON")
        db.execute("UPDATE patients SET phone_hash = 'h', id_number_hash = 'i' WHERE id = 1")
        db.execute("INSERT INTO patient_links VALUES (1, 1, 'self', '2026-01-01')")
        columns = {row[1] for row in db.execute("PRAGMA table_info(patients)")}
        assert {"phone_cipher", "id_number_hash", "card_number_cipher", "birth_date", "sex"} <= columns
    alembic(url, "downgrade", "0003")
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT id, display_name FROM patients").fetchall() == [(1, "a")]
        assert db.execute("SELECT patient_id FROM wechat_identities").fetchall() == [(1,)]
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert "patient_links" not in tables
        assert "phone_cipher" not in {row[1] for row in db.execute("PRAGMA table_info(patients)")}


def test_0009_hashes_the_masked_phone_of_patients_on_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Staff search by 139****1111: patients registered before 0009 are found too."""
    monkeypatch.setenv("PATIENT_DATA_KEYS", f"a:{KEY_A}")
    monkeypatch.setenv("PATIENT_LOOKUP_KEY", LOOKUP_KEY)
    protector = AesGcmProtector(parse_data_keys(f"a:{KEY_A}"), base64.b64decode(LOOKUP_KEY))
    path = tmp_path / "carebridge.db"
    url = f"sqlite+aiosqlite:///{path}"
    alembic(url, "upgrade", "0006")
    with sqlite3.connect(path) as db:
        db.execute(
            "INSERT INTO patients (id, display_name, created_at, phone_cipher)"
            " VALUES (1, 'a', '2026-01-01', ?)",
            (protector.encrypt(PHONE, "13900001111"),),
        )
        db.execute("INSERT INTO patients (id, display_name, created_at) VALUES (2, 'b', '2026-01-01')")
    alembic(url, "upgrade", "0009_patient_console")
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT id, masked_phone_hash FROM patients ORDER BY id").fetchall()
    assert rows == [(1, protector.lookup_hash(MASKED_PHONE, "139****1111")), (2, None)]
    alembic(url, "downgrade", "0006")
    with sqlite3.connect(path) as db:
        assert "masked_phone_hash" not in {row[1] for row in db.execute("PRAGMA table_info(patients)")}
        assert db.execute("SELECT id FROM patients ORDER BY id").fetchall() == [(1,), (2,)]
