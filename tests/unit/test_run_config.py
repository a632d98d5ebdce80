"""How `make run` starts the web app: on this machine only, unless HOST says otherwise."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_web_app_listens_on_localhost_unless_configured() -> None:
    assert re.search(r"^HOST \?= 127\.0\.0\.1$", (ROOT / "Makefile").read_text(), re.MULTILINE)
    for procfile in ("Procfile", "Procfile.scaled"):
        web = next(line for line in (ROOT / procfile).read_text().splitlines() if line.startswith("web:"))
        assert "--host ${HOST:-127.0.0.1}" in web, (procfile, web)
        assert "0.0.0.0" not in web
