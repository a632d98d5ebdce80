"""How the web app is started: on this machine only unless HOST says otherwise, and always through
crm_backend/web.py, which alone decides whose X-Forwarded-For is believed."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from crm_backend.config import Settings
from crm_backend.web import proxy_options
from tests.support.stack import free_port, wait_until

ROOT = Path(__file__).resolve().parents[2]


def test_the_web_app_listens_on_localhost_unless_configured() -> None:
    assert re.search(r"^HOST \?= 127\.0\.0\.1$", (ROOT / "Makefile").read_text(), re.MULTILINE)
    for procfile in ("Procfile", "Procfile.scaled"):
        web = next(line for line in (ROOT / procfile).read_text().splitlines() if line.startswith("web:"))
        assert "--host ${HOST:-127.0.0.1}" in web, (procfile, web)
        assert "0.0.0.0" not in web


def test_every_launcher_starts_the_web_app_through_crm_backend_web() -> None:
    """Only crm_backend/web.py decides which proxies are believed; a launcher that called uvicorn
    itself would believe X-Forwarded-For from 127.0.0.1 again (uvicorn's own default)."""
    for procfile in ("Procfile", "Procfile.scaled"):
        web = next(line for line in (ROOT / procfile).read_text().splitlines() if line.startswith("web:"))
        assert "-m crm_backend.web " in web and "uvicorn" not in web, (procfile, web)
    sources = [ROOT / "Makefile", *(ROOT / "tests").rglob("*.py"), *(ROOT / "bench").rglob("*.py")]
    starting_the_app = [
        path.relative_to(ROOT)
        for path in sources
        if "crm_backend.app:build" in path.read_text() and path.name != "test_run_config.py"
    ]
    assert starting_the_app == []


def test_forwarded_headers_are_believed_only_from_configured_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FORWARDED_ALLOW_IPS", raising=False)
    assert proxy_options(Settings(_env_file=None)) == {"proxy_headers": False}
    assert proxy_options(Settings(_env_file=None, FORWARDED_ALLOW_IPS="")) == {"proxy_headers": False}
    assert proxy_options(Settings(_env_file=None, FORWARDED_ALLOW_IPS=" 10.1.0.5, 10.2.0.0/16 ")) == {
        "proxy_headers": True,
        "forwarded_allow_ips": "10.1.0.5,10.2.0.0/16",
    }


def _listening_addresses(port: int) -> set[str]:
    """Local addresses (hex, as the kernel writes them) of the IPv4 sockets listening on `port`."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, hex_port = local.split(":")
        if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
            found.add(address)
    return found


def test_the_action_server_listens_on_localhost_only() -> None:
    """Anyone who reaches the action server can make it call the CRM with the bot token."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("SANIC_HOST", "RASA_INTERFACE")}
    env["ACTION_SERVER_PORT"] = str(port)
    launch = [str(ROOT / ".venv-rasa" / "bin" / "python"), str(ROOT / "bot" / "launch.py"), "actions"]
    process = subprocess.Popen(launch, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: bool(_listening_addresses(port)), 60, "action server")
        assert _listening_addresses(port) == {"0100007F"}  # 127.0.0.1, not 0.0.0.0
    finally:
        process.terminate()
        process.wait(timeout=30)
