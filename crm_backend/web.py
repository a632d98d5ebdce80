"""Start the web process: `python -m crm_backend.web --host H --port P [--workers N]`.

Every launcher goes through here (Procfile, Procfile.scaled, the tests' and benches' Stack), so
which proxies may name the client is decided in one place. Left to itself uvicorn believes
X-Forwarded-For from 127.0.0.1, and any local client could then choose the address that login
throttling counts and the audit log records; here it is believed only from FORWARDED_ALLOW_IPS
(empty by default: from nobody).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

import uvicorn

from crm_backend.config import Settings, get_settings

#: The app factory uvicorn imports in each of its processes.
APP_FACTORY = "crm_backend.app:build"


def proxy_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's proxy-header options for FORWARDED_ALLOW_IPS: off unless some proxy is named."""
    trusted = ",".join(part.strip() for part in settings.forwarded_allow_ips.split(",") if part.strip())
    if not trusted:
        return {"proxy_headers": False}
    return {"proxy_headers": True, "forwarded_allow_ips": trusted}


def main(argv: Sequence[str] | None = None) -> None:
    settings = get_settings()
    parser = argparse.ArgumentParser(prog="python -m crm_backend.web", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default: %(default)s)")
    parser.add_argument("--port", type=int, default=settings.port, help="default: PORT (%(default)s)")
    parser.add_argument("--workers", type=int, default=1, help="web processes on this port (default: 1)")
    args = parser.parse_args(argv)
    uvicorn.run(
        APP_FACTORY,
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        access_log=False,
        **proxy_options(settings),
    )


if __name__ == "__main__":
    main()
