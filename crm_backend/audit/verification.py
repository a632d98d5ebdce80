"""Walking the audit chain to find the first broken link, a batch of entries at a time.

Checked in id order for each entry: that its prev_hash is the previous entry's hash (else an entry
is missing, was reordered or was rewritten together with its hash), and that its hash matches its
fields (else it was changed). The walk stops at the entry the chain head names when it starts, so
entries appended meanwhile are left for the next run; that entry must exist with the head's hash
(else entries were removed from the end). An anchor (an id and hash written down earlier) must be
found with that hash: it is what catches a truncated tail when the head was rewritten as well.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from crm_backend.audit.chain import GENESIS, EntryContent, entry_hash
from crm_backend.audit.models import AuditChainHead, AuditEntry

DEFAULT_BATCH = 1000

EntryHash = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
EntryId = Annotated[int, Field(ge=1, le=2**63 - 1)]

Problem = Literal["content_changed", "link_broken", "tail_missing", "anchor_mismatch", "anchor_not_found"]


class Anchor(BaseModel):
    """The latest entry's id and hash at some moment, to be written down outside the database."""

    entry_id: EntryId
    entry_hash: EntryHash


class BrokenLink(BaseModel):
    entry_id: int | None
    problem: Problem
    message: str


class ChainReport(BaseModel):
    ok: bool
    #: Entries whose link and hash were checked.
    checked: int
    #: The last entry checked (the chain head when the walk began).
    last_id: int | None
    last_hash: str | None
    anchor: Anchor | None
    #: The first problem in chain order, or null.
    broken: BrokenLink | None

    def summary(self) -> str:
        """One line for a terminal or a log."""
        if self.broken is None:
            anchored = f", anchor {self.anchor.entry_id} matches" if self.anchor else ""
            return (
                f"audit chain intact: {self.checked} entries checked up to entry {self.last_id} "
                f"(hash {self.last_hash}){anchored}"
            )
        where = f"entry {self.broken.entry_id}" if self.broken.entry_id is not None else "the log"
        return f"audit chain BROKEN at {where}: {self.broken.problem}: {self.broken.message}"


async def verify_chain(
    conn: AsyncConnection, anchor: Anchor | None = None, *, batch: int = DEFAULT_BATCH
) -> ChainReport:
    """Walk the chain on `conn`; reads only, `batch` entries per query."""
    head = (await conn.execute(select(AuditChainHead.last_id, AuditChainHead.last_hash))).first()
    head_id = head.last_id if head is not None else None
    checked = 0
    prev_id: int | None = None
    prev_hash = GENESIS
    anchor_seen = False

    def report(broken: BrokenLink | None) -> ChainReport:
        return ChainReport(
            ok=broken is None,
            checked=checked,
            last_id=prev_id,
            last_hash=prev_hash if prev_id is not None else None,
            anchor=anchor,
            broken=broken,
        )

    while head_id is not None:
        query = select(AuditEntry).where(AuditEntry.id <= head_id).order_by(AuditEntry.id).limit(batch)
        if prev_id is not None:
            query = query.where(AuditEntry.id > prev_id)
        rows = (await conn.execute(query)).all()
        if not rows:
            break
        for row in rows:
            if row.prev_hash != prev_hash:
                after = f"entry {prev_id}" if prev_id is not None else "the start of the chain"
                return report(
                    BrokenLink(
                        entry_id=row.id,
                        problem="link_broken",
                        message=f"does not follow {after}: an entry before it is missing, "
                        "or the entry before it was rewritten",
                    )
                )
            if entry_hash(EntryContent.of(row), row.prev_hash) != row.entry_hash:
                return report(
                    BrokenLink(
                        entry_id=row.id,
                        problem="content_changed",
                        message="its fields no longer match its hash: it was changed after it was written",
                    )
                )
            if anchor is not None and row.id == anchor.entry_id:
                if row.entry_hash != anchor.entry_hash:
                    return report(
                        BrokenLink(
                            entry_id=row.id,
                            problem="anchor_mismatch",
                            message="its hash differs from the anchor's: the chain was rebuilt up to here",
                        )
                    )
                anchor_seen = True
            checked += 1
            prev_id, prev_hash = row.id, row.entry_hash

    if head is not None and head_id is not None and (prev_id != head_id or prev_hash != head.last_hash):
        last = f"entry {prev_id}" if prev_id is not None else "no entry"
        return report(
            BrokenLink(
                entry_id=head_id,
                problem="tail_missing",
                message=f"the chain head records entry {head_id} as the last, but the log ends at {last}: "
                "entries were removed from the end",
            )
        )
    if anchor is not None and not anchor_seen:
        last = f"entry {prev_id}" if prev_id is not None else "no entry"
        return report(
            BrokenLink(
                entry_id=anchor.entry_id,
                problem="anchor_not_found",
                message=f"the anchor's entry is not in the chain, which ends at {last}: "
                "the log was truncated",
            )
        )
    return report(None)


def audit_detail(report: ChainReport) -> dict[str, Any]:
    """What the audit entry of a verification keeps: the outcome, not the whole report."""
    return {
        "ok": report.ok,
        "checked": report.checked,
        "last_id": report.last_id,
        "anchor_id": report.anchor.entry_id if report.anchor else None,
        "problem": report.broken.problem if report.broken else None,
        "broken_id": report.broken.entry_id if report.broken else None,
    }
