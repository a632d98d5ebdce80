"""The hash chain over the audit log: what each entry's hash covers, in one documented byte format.

Each entry stores `prev_hash` (the hash of the entry before it, or GENESIS for the first) and
`entry_hash`, the SHA-256 of its canonical serialisation below. Changing a stored field, removing an
entry or reordering entries therefore breaks a link that anyone holding a later hash can check.

Canonical serialisation (format version 1): a JSON object with exactly the keys
`v, prev, at, staff_id, action, object_type, object_id, patient_id, ip, user_agent, detail`,
keys sorted, no whitespace (separators "," and ":"), UTF-8 without escaping non-ASCII, `at` as
UTC "YYYY-MM-DDTHH:MM:SS.ffffffZ", absent values as null, `detail` as stored (JSON). The id is not
covered: the links already fix each entry's place, and PostgreSQL hands out ids only at insert.

This module must never change what it produces for version 1: the migration that chained the
existing rows and every stored hash depend on it. A new format gets a new version number.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

FORMAT_VERSION = 1
#: The previous hash of the first entry.
GENESIS = "0" * 64


@dataclass(frozen=True)
class EntryContent:
    """The fields of an audit entry that its hash covers."""

    at: datetime
    staff_id: int | None
    action: str
    object_type: str
    object_id: str
    patient_id: int | None
    ip: str | None
    user_agent: str | None
    detail: dict[str, Any] | None

    @classmethod
    def of(cls, row: Any) -> EntryContent:
        """The hashed fields of anything that carries them: a stored row, an entry."""
        return cls(**{name: getattr(row, name) for name in HASHED_FIELDS})


#: The entry's fields its hash covers, in EntryContent's order.
HASHED_FIELDS = (
    "at",
    "staff_id",
    "action",
    "object_type",
    "object_id",
    "patient_id",
    "ip",
    "user_agent",
    "detail",
)


def canonical_detail(detail: dict[str, Any] | None) -> dict[str, Any] | None:
    """`detail` as it reads back from the JSON column (string keys, lists for tuples), so the hash
    computed before storing equals the one computed from the stored row."""
    if detail is None:
        return None
    return json.loads(json.dumps(detail, ensure_ascii=False))


def serialise(content: EntryContent, prev_hash: str) -> bytes:
    at = content.at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    document = {
        "v": FORMAT_VERSION,
        "prev": prev_hash,
        "at": at,
        "staff_id": content.staff_id,
        "action": content.action,
        "object_type": content.object_type,
        "object_id": content.object_id,
        "patient_id": content.patient_id,
        "ip": content.ip,
        "user_agent": content.user_agent,
        "detail": content.detail,
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def entry_hash(content: EntryContent, prev_hash: str) -> str:
    """Lower-case hex SHA-256 of the entry's canonical serialisation."""
    return hashlib.sha256(serialise(content, prev_hash)).hexdigest()
