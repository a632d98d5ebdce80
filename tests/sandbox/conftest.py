"""Fixtures for the sandbox's own tests: an in-process fake WeChat per test, and one real subprocess."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from channels.sandbox.wechat_api import SandboxState, create_wechat_router
from crm_backend.config import Settings, get_settings

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def settings() -> Settings:
    return get_settings()


@pytest.fixture
def state() -> SandboxState:
    return SandboxState()


@pytest.fixture
async def client(state: SandboxState) -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    app.include_router(create_wechat_router(state))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sandbox.test") as c:
        yield c


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[str]:
    """`python -m channels.sandbox` on a free port, as other test suites run it."""
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")])),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "channels.sandbox", "--port", str(port)],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            if process.poll() is not None:
                output = process.stdout.read().decode(errors="replace") if process.stdout else ""
                pytest.fail(f"sandbox exited with {process.returncode}:\n{output}")
            try:
                if httpx.get(f"{base}/sandbox/stats", timeout=0.5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("sandbox did not start within 20 seconds")
            time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
