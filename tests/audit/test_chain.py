"""The audit log's hash chain: tampering behind the application's back is found and located."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from dataclasses import replace
from typing import Any

import httpx
import sqlalchemy as sa
from fastapi import FastAPI

from crm_backend.audit import service as audit
from crm_backend.audit.chain import GENESIS, EntryContent, entry_hash
from crm_backend.audit.models import AuditEntry
from crm_backend.audit.verification import Anchor, ChainReport, verify_chain
from crm_backend.database.core import Database
from tests.support.api import login, make_staff, new_client
from tests.support.postgres import ROOT


async def append(db: Database, count: int, *, action: str = "patient.view") -> list[int]:
    """`count` entries, each in its own transaction as requests write them; returns their ids."""
    for n in range(count):
        async with db.sessions() as session:
            await audit.record(
                session,
                staff_id=None,
                action=action,
                object_type="patient",
                object_id=n + 1,
                patient_id=n + 1,
                detail={"fields": ["phone", "姓名"], "n": n, 3: "int key"},
            )
            await session.commit()
    async with db.engine.connect() as conn:
        ids = await conn.execute(
            sa.text("SELECT id FROM audit_log WHERE action = :a ORDER BY id"), {"a": action}
        )
        return list(ids.scalars())


async def as_owner(db: Database, *statements: str) -> None:
    """What a database owner can do: put the append-only triggers aside and rewrite the table."""
    async with db.engine.begin() as conn:
        if db.is_sqlite:
            await conn.execute(sa.text("DROP TRIGGER audit_log_no_update"))
            await conn.execute(sa.text("DROP TRIGGER audit_log_no_delete"))
        else:
            await conn.execute(sa.text("ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update_delete"))
        for statement in statements:
            await conn.execute(sa.text(statement))


async def verify(db: Database, anchor: Anchor | None = None, batch: int = 3) -> ChainReport:
    """A small batch, so every walk crosses batch boundaries."""
    async with db.engine.connect() as conn:
        return await verify_chain(conn, anchor, batch=batch)


def command(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "crm_backend.audit.verify", *args],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=60,
    )


async def anchor_of(db: Database, entry_id: int) -> Anchor:
    async with db.engine.connect() as conn:
        digest = await conn.scalar(sa.text("SELECT entry_hash FROM audit_log WHERE id = :i"), {"i": entry_id})
    return Anchor(entry_id=entry_id, entry_hash=digest)


async def test_untouched_log_verifies_by_endpoint_and_command(
    admin_client: httpx.AsyncClient, db: Database, database_url: str
):
    await append(db, 7)
    anchor = (await admin_client.get("/api/console/audit/anchor")).json()
    async with db.engine.connect() as conn:
        latest = (
            await conn.execute(sa.text("SELECT id, entry_hash FROM audit_log ORDER BY id DESC"))
        ).first()
    assert (anchor["entry_id"], anchor["entry_hash"]) == tuple(latest)

    params = {"anchor_id": anchor["entry_id"], "anchor_hash": anchor["entry_hash"].upper()}
    response = await admin_client.get("/api/console/audit/verify", params=params)
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["ok"] is True and report["broken"] is None
    assert report["checked"] == anchor["entry_id"]  # login, 7 entries: all of them, ids from 1
    assert report["last_id"] == anchor["entry_id"]

    result = command(
        database_url, "--anchor-id", str(anchor["entry_id"]), "--anchor-hash", anchor["entry_hash"]
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("audit chain intact:") and len(result.stdout.splitlines()) == 1

    # both checks are themselves in the log, with who checked and what they found
    async with db.engine.connect() as conn:
        rows = (
            await conn.execute(
                sa.text("SELECT staff_id, detail FROM audit_log WHERE action = 'audit.verify' ORDER BY id")
            )
        ).all()
    details = [row.detail if isinstance(row.detail, dict) else json.loads(row.detail) for row in rows]
    assert [row.staff_id is None for row in rows] == [False, True]
    assert [(d["ok"], d["anchor_id"], d.get("via")) for d in details] == [
        (True, anchor["entry_id"], None),
        (True, anchor["entry_id"], "command"),
    ]
    assert (await verify(db)).ok


async def test_an_entry_edited_as_the_database_owner_is_found(
    admin_client: httpx.AsyncClient, db: Database, database_url: str
):
    ids = await append(db, 8)
    victim = ids[4]
    await as_owner(db, f"UPDATE audit_log SET patient_id = 999 WHERE id = {victim}")

    report = await verify(db)
    assert not report.ok and report.broken is not None
    assert (report.broken.entry_id, report.broken.problem) == (victim, "content_changed")

    body = (await admin_client.get("/api/console/audit/verify")).json()
    assert body["broken"]["entry_id"] == victim and body["broken"]["problem"] == "content_changed"

    result = command(database_url)
    assert result.returncode == 1
    assert result.stdout.strip() == report.summary()
    assert f"BROKEN at entry {victim}: content_changed" in result.stdout


async def test_an_edit_that_also_rewrites_the_hash_breaks_the_next_link(db: Database):
    ids = await append(db, 6)
    victim = ids[2]
    async with db.sessions() as session:
        entry = await session.get(AuditEntry, victim)
        assert entry is not None
        forged = replace(EntryContent.of(entry), action="forged")
        digest = entry_hash(forged, entry.prev_hash)
    await as_owner(db, f"UPDATE audit_log SET action = 'forged', entry_hash = '{digest}' WHERE id = {victim}")
    report = await verify(db)
    assert report.broken is not None
    assert (report.broken.entry_id, report.broken.problem) == (ids[3], "link_broken")
    assert f"does not follow entry {victim}" in report.broken.message


async def test_a_deleted_middle_entry_is_found(db: Database, database_url: str):
    ids = await append(db, 9)
    await as_owner(db, f"DELETE FROM audit_log WHERE id = {ids[4]}")
    report = await verify(db)
    assert report.broken is not None
    assert (report.broken.entry_id, report.broken.problem) == (ids[5], "link_broken")
    assert f"does not follow entry {ids[3]}" in report.broken.message
    assert report.checked == ids[3]

    result = command(database_url)
    assert result.returncode == 1 and f"BROKEN at entry {ids[5]}: link_broken" in result.stdout


async def test_a_deleted_first_entry_is_found(db: Database):
    ids = await append(db, 4)
    await as_owner(db, f"DELETE FROM audit_log WHERE id = {ids[0]}")
    report = await verify(db)
    assert report.broken is not None and (report.broken.entry_id, report.broken.problem) == (
        ids[1],
        "link_broken",
    )


async def test_a_truncated_tail_is_found_by_the_chain_head_and_later_appends(db: Database):
    ids = await append(db, 6)
    await as_owner(db, f"DELETE FROM audit_log WHERE id > {ids[3]}")
    report = await verify(db)
    assert report.broken is not None
    assert (report.broken.entry_id, report.broken.problem) == (ids[5], "tail_missing")

    # the next entry links to the removed one, so the gap stays visible after more writes
    later = await append(db, 1, action="login")
    report = await verify(db)
    assert report.broken is not None and (report.broken.entry_id, report.broken.problem) == (
        later[0],
        "link_broken",
    )


async def test_a_truncated_tail_with_a_rewritten_head_is_found_with_an_anchor(
    admin_client: httpx.AsyncClient, db: Database, database_url: str
):
    ids = await append(db, 6)
    anchor = await anchor_of(db, ids[-1])
    kept = await anchor_of(db, ids[2])
    await as_owner(
        db,
        f"DELETE FROM audit_log WHERE id > {kept.entry_id}",
        f"UPDATE audit_chain_head SET last_id = {kept.entry_id}, last_hash = '{kept.entry_hash}'",
    )
    assert (await verify(db)).ok  # without an anchor a careful owner's truncation is invisible
    report = await verify(db, anchor)
    assert report.broken is not None
    assert (report.broken.entry_id, report.broken.problem) == (anchor.entry_id, "anchor_not_found")
    assert f"ends at entry {kept.entry_id}" in report.broken.message

    params = {"anchor_id": anchor.entry_id, "anchor_hash": anchor.entry_hash}
    body = (await admin_client.get("/api/console/audit/verify", params=params)).json()
    assert body["ok"] is False and body["broken"]["problem"] == "anchor_not_found"

    result = command(database_url, "--anchor-id", str(anchor.entry_id), "--anchor-hash", anchor.entry_hash)
    assert result.returncode == 1 and "anchor_not_found" in result.stdout
    assert command(database_url).returncode == 0


async def test_an_anchor_with_another_hash_is_reported(db: Database):
    ids = await append(db, 3)
    report = await verify(db, Anchor(entry_id=ids[1], entry_hash="a" * 64))
    assert report.broken is not None and (report.broken.entry_id, report.broken.problem) == (
        ids[1],
        "anchor_mismatch",
    )


async def test_a_rolled_back_change_leaves_no_entry_and_no_gap(db: Database):
    await append(db, 2)
    async with db.sessions() as session:
        await audit.record(session, staff_id=None, action="staff.update", object_type="staff", object_id=1)
        await session.rollback()
        await audit.record(session, staff_id=None, action="staff.create", object_type="staff", object_id=2)
        await session.commit()
    async with db.sessions() as session:
        await audit.record(session, staff_id=None, action="staff.update", object_type="staff", object_id=3)
        # closed without commit
    async with db.engine.connect() as conn:
        actions = (await conn.execute(sa.text("SELECT action FROM audit_log ORDER BY id"))).scalars().all()
    assert actions == ["patient.view", "patient.view", "staff.create"]
    assert (await verify(db)).ok


async def test_several_entries_in_one_transaction_are_chained_in_order(db: Database):
    async with db.sessions() as session:
        for n in range(5):
            await audit.record(
                session, staff_id=None, action="schedule.import", object_type="schedule", object_id=n
            )
        await session.commit()
    async with db.engine.connect() as conn:
        rows = (
            await conn.execute(sa.text("SELECT object_id, prev_hash, entry_hash FROM audit_log ORDER BY id"))
        ).all()
    assert [row.object_id for row in rows] == ["0", "1", "2", "3", "4"]
    assert rows[0].prev_hash == GENESIS
    assert all(rows[i].prev_hash == rows[i - 1].entry_hash for i in range(1, 5))
    assert (await verify(db)).ok


async def test_concurrent_appends_from_several_processes_form_one_chain(database_url: str, db: Database):
    """Two engines stand for two processes (web and worker); 60 transactions race to append."""
    other = Database(database_url)
    try:

        async def one(n: int) -> None:
            database = db if n % 2 else other
            async with database.sessions() as session:
                await audit.record(session, staff_id=None, action="race", object_type="test", object_id=n)
                await asyncio.sleep(0)  # let the others reach their commit too
                await session.commit()

        await asyncio.gather(*(one(n) for n in range(60)))
    finally:
        await other.dispose()
    async with db.engine.connect() as conn:
        rows = (await conn.execute(sa.text("SELECT object_id, prev_hash FROM audit_log ORDER BY id"))).all()
    assert sorted(int(row.object_id) for row in rows) == list(range(60))
    assert len({row.prev_hash for row in rows}) == 60  # no two entries claim the same predecessor
    report = await verify(db, batch=1000)
    assert report.ok, report.summary()
    assert report.checked == 60


async def test_agents_may_not_see_the_anchor_or_verify(admin_client: httpx.AsyncClient, app: FastAPI):
    agent, password = await make_staff(admin_client, role="agent")
    async with new_client(app) as client:
        await login(client, agent["username"], password)
        assert (await client.get("/api/console/audit/verify")).status_code == 403
        assert (await client.get("/api/console/audit/anchor")).status_code == 403
    supervisor, password = await make_staff(admin_client, role="supervisor")
    async with new_client(app) as client:
        await login(client, supervisor["username"], password)
        assert (await client.get("/api/console/audit/anchor")).status_code == 200
        assert (await client.get("/api/console/audit/verify")).json()["ok"] is True


async def test_a_malformed_anchor_is_refused_and_not_recorded(admin_client: httpx.AsyncClient, db: Database):
    async def verifications() -> int:
        async with db.engine.connect() as conn:
            return await conn.scalar(sa.text("SELECT count(*) FROM audit_log WHERE action = 'audit.verify'"))

    bad: list[dict[str, Any]] = [
        {"anchor_id": 1},
        {"anchor_hash": "a" * 64},
        {"anchor_id": 1, "anchor_hash": "xyz"},
        {"anchor_id": 1, "anchor_hash": "g" * 64},
        {"anchor_id": 0, "anchor_hash": "a" * 64},
        {"anchor_id": "99999999999999999999999", "anchor_hash": "a" * 64},
    ]
    for params in bad:
        response = await admin_client.get("/api/console/audit/verify", params=params)
        assert response.status_code == 400, (params, response.text)
    assert await verifications() == 0


def test_the_command_refuses_half_an_anchor(database_url: str):
    result = command(database_url, "--anchor-id", "3")
    assert result.returncode == 2 and "go together" in result.stderr
