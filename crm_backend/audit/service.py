"""Writing audit entries inside the caller's transaction, so the entry and the change commit together.

`record()` only notes the entry on the session. When the session commits, the noted entries are
chained (chain.py) and inserted as the transaction's last step: the caller's own changes are flushed
first, then the one-row chain head is locked, so every process appends to the same chain in commit
order, and the lock is held only for the last moments of the transaction (no deadlock with the
caller's row locks, which are all taken already). A rollback drops the noted entries: no entry,
no gap in the chain.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event, insert, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction
from starlette.requests import HTTPConnection

from crm_backend.audit.chain import EntryContent, canonical_detail, entry_hash
from crm_backend.audit.models import AuditChainHead, AuditEntry
from crm_backend.database.core import utcnow

#: Key in Session.info of the entries recorded in the session's current transaction.
_PENDING = "audit_pending_entries"


def client_ip(conn: HTTPConnection | None) -> str | None:
    """The client's address: the peer, or what a proxy in FORWARDED_ALLOW_IPS says (crm_backend/web.py)."""
    if conn is None or conn.client is None:
        return None
    return conn.client.host[:64]


async def record(
    session: AsyncSession,
    *,
    staff_id: int | None,
    action: str,
    object_type: str,
    object_id: str | int,
    patient_id: int | None = None,
    request: HTTPConnection | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditEntry:
    """Note an entry on `session`; the caller commits, and the entry is written (and gets its id)
    with that commit. A rolled-back change leaves none."""
    user_agent = request.headers.get("user-agent") if request is not None else None
    entry = AuditEntry(
        at=utcnow(),
        staff_id=staff_id,
        action=action,
        object_type=object_type,
        object_id=str(object_id)[:64],
        patient_id=patient_id,
        ip=client_ip(request),
        user_agent=user_agent[:255] if user_agent else None,
        detail=canonical_detail(detail),
    )
    if not session.in_transaction():
        session.sync_session.begin()  # so that a rollback or close has a transaction to end
    session.sync_session.info.setdefault(_PENDING, []).append(entry)
    return entry


@event.listens_for(Session, "before_commit")
def _append_pending(session: Session) -> None:
    """Chain and insert this transaction's entries (runs inside the commit, before COMMIT is sent)."""
    pending: list[AuditEntry] = session.info.pop(_PENDING, [])
    if not pending:
        return
    session.flush()  # the caller's row locks first, the chain head's last
    head = AuditChainHead.__table__
    # An UPDATE both locks the row (PostgreSQL; it then returns the latest committed version) and
    # takes SQLite's database write lock before the head is read, so no two appenders read the same.
    locked = session.execute(
        update(head).where(head.c.id == 1).values(last_id=head.c.last_id).returning(head.c.last_hash)
    ).first()
    if locked is None:
        raise RuntimeError("audit_chain_head has no row: run the database migrations")
    prev = locked.last_hash
    log = AuditEntry.__table__
    for entry in pending:
        entry.prev_hash = prev
        entry.entry_hash = prev = entry_hash(EntryContent.of(entry), prev)
        # One INSERT each, so ids follow the chain's order. Core, not the unit of work: it needs no
        # other domain's tables mapped (the verify command maps only audit's).
        values = {column.key: getattr(entry, column.key) for column in log.columns if column.key != "id"}
        entry.id = session.execute(insert(log).values(values).returning(log.c.id)).scalar_one()
    session.execute(update(head).where(head.c.id == 1).values(last_id=pending[-1].id, last_hash=prev))


@event.listens_for(Session, "after_transaction_end")
def _drop_pending(session: Session, transaction: SessionTransaction) -> None:
    """Entries of a transaction that ended without commit (rollback, close) are never written; a
    commit has taken its entries already. A savepoint's end keeps them for the outer transaction."""
    if transaction.parent is None:
        session.info.pop(_PENDING, None)
