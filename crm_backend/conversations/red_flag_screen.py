"""The red-flag screen (crm_backend.triage.red_flags) as a turn uses it: once per text, and a mark.

`route.decide` asks it of every patient message, in every state, so an emergency takes the
EMERGENCY route before consent, staff, a rating or a form sees it. The stored message carries what
was found (`MARK_KEY` in `Message.extra`): the console shows the flags' names, and escalations make
the conversation's escalation urgent. One text is screened once per process however many steps
ask (the pending read, step 1, the mark): the screen is pure, so a small cache is exact.
"""

from __future__ import annotations

import functools
from typing import Any

from crm_backend.triage.red_flags import RedFlagResult, screen
from crm_backend.triage.service import MAX_TEXT_CHARS

#: How much of one part a long message's next part reads again, so no finding is cut in two.
OVERLAP_CHARS = 100
#: Message.extra key: {"flags": [names], "rules": [rule ids], "version": "..."} on an emergency.
MARK_KEY = "red_flags"


@functools.lru_cache(maxsize=512)
def screened(text: str) -> RedFlagResult:
    """The screen's verdict on the whole of a patient's text: a long one is read in overlapping
    parts the screen's size, and the first part that raises a red flag decides."""
    step = MAX_TEXT_CHARS - OVERLAP_CHARS
    parts = [
        text[start : start + MAX_TEXT_CHARS] for start in range(0, max(len(text) - OVERLAP_CHARS, 1), step)
    ]
    first = screen(parts[0])
    if first.emergency:
        return first
    return next((result for result in map(screen, parts[1:]) if result.emergency), first)


def is_emergency(text: str | None) -> bool:
    return bool(text) and screened(text or "").emergency


def mark(text: str) -> dict[str, Any] | None:
    """What a message describing an emergency carries in `extra[MARK_KEY]`; None otherwise."""
    result = screened(text)
    if not result.emergency:
        return None
    return {
        "flags": [flag.name for flag in result.flags],
        "rules": list(result.rule_ids),
        "version": result.version,
    }


def flags_of(extra: dict[str, Any] | None) -> list[str]:
    """The red flags' names a stored message was marked with (empty for none)."""
    found = (extra or {}).get(MARK_KEY)
    if not isinstance(found, dict):
        return []
    return [str(name) for name in found.get("flags") or []]
