"""`python -m channels.sandbox --port N`: the fake WeChat API on its own, as tests and `make` start it."""

from __future__ import annotations

import argparse

import uvicorn

from channels.sandbox.wechat_api import create_app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m channels.sandbox", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default: %(default)s)")
    parser.add_argument("--port", type=int, default=8900, help="port to listen on (default: %(default)s)")
    parser.add_argument("--log-level", default="warning", help="uvicorn log level (default: %(default)s)")
    args = parser.parse_args(argv)
    uvicorn.run(create_app(), host=args.host, port=args.port, log_level=args.log_level)


if __name__ == "__main__":
    main()
