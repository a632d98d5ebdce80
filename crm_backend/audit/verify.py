"""Command: check the audit log's hash chain, optionally against an anchor written down earlier.

    python -m crm_backend.audit.verify [--anchor-id N --anchor-hash H]

Prints one line and exits 0 when the chain is intact, 1 at the first broken link, 2 on bad
arguments. The check is itself recorded in the audit log (as the system: staff_id null).
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from pydantic import ValidationError

from crm_backend.audit.service import record
from crm_backend.audit.verification import Anchor, ChainReport, audit_detail, verify_chain
from crm_backend.config import Settings
from crm_backend.database.core import Database


async def run(database_url: str, anchor: Anchor | None) -> ChainReport:
    db = Database(database_url)
    try:
        async with db.engine.connect() as conn:
            report = await verify_chain(conn, anchor)
        async with db.sessions() as session:
            await record(
                session,
                staff_id=None,
                action="audit.verify",
                object_type="audit_log",
                object_id="",
                detail={**audit_detail(report), "via": "command"},
            )
            await session.commit()
        return report
    finally:
        await db.dispose()


def parse_anchor(parser: argparse.ArgumentParser, args: argparse.Namespace) -> Anchor | None:
    if args.anchor_id is None and args.anchor_hash is None:
        return None
    if args.anchor_id is None or args.anchor_hash is None:
        parser.error("--anchor-id and --anchor-hash go together")
    try:
        return Anchor(entry_id=args.anchor_id, entry_hash=args.anchor_hash.strip().lower())
    except ValidationError:
        parser.error("--anchor-id must be a positive entry id and --anchor-hash 64 hexadecimal digits")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m crm_backend.audit.verify", description="Check the audit log's hash chain."
    )
    parser.add_argument("--anchor-id", type=int, help="id of an entry written down earlier")
    parser.add_argument("--anchor-hash", help="that entry's hash as written down")
    args = parser.parse_args(argv)
    anchor = parse_anchor(parser, args)
    report = asyncio.run(run(Settings().database_url, anchor))
    print(report.summary())
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
