"""Test databases on the local PostgreSQL server: each suite creates its own and migrates it."""

from __future__ import annotations

import os
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg

ROOT = Path(__file__).resolve().parents[2]
#: An existing database on the test server we may connect to in order to create our own.
POSTGRES_ADMIN_DSN = os.environ.get("TEST_POSTGRES_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/test")


def postgres_url(name: str) -> str:
    host_part = POSTGRES_ADMIN_DSN.split("://", 1)[1].rsplit("/", 1)[0]
    return f"postgresql+asyncpg://{host_part}/{name}"


async def drop_postgres(name: str) -> None:
    conn = await asyncpg.connect(POSTGRES_ADMIN_DSN)
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    finally:
        await conn.close()


async def recreate_postgres(name: str) -> str:
    """An empty database `name` (dropped first if a crashed run left it); returns its async URL."""
    await drop_postgres(name)
    conn = await asyncpg.connect(POSTGRES_ADMIN_DSN)
    try:
        await conn.execute(f"CREATE DATABASE {name}")
    finally:
        await conn.close()
    return postgres_url(name)


def alembic(database_url: str, *args: str) -> None:
    subprocess.run(
        [str(ROOT / ".venv" / "bin" / "alembic"), "-c", "crm_backend/alembic.ini", *args],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": database_url},
        check=True,
        capture_output=True,
    )


@asynccontextmanager
async def database_at_head(kind: str, name: str, folder: Path) -> AsyncIterator[str]:
    """A database migrated to head, as the web app runs on it: `kind` "sqlite" (a file in `folder`)
    or "postgresql" (database `name`, dropped afterwards). Yields its async URL."""
    if kind == "sqlite":
        url = f"sqlite+aiosqlite:///{folder / 'carebridge.db'}"
        alembic(url, "upgrade", "head")
        yield url
        return
    url = await recreate_postgres(name)
    alembic(url, "upgrade", "head")
    try:
        yield url
    finally:
        await drop_postgres(name)
