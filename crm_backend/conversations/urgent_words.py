"""Urgent clinical words in a patient's message: a small, data-driven alarm for staff.

The words live in `urgent_words.yml` beside this module, with a version, so clinicians can review
and replace them without touching code. A message that names one (and does not plainly negate it:
"没有胸痛") is marked when it is stored (`MARK_KEY` in `Message.extra`); the escalation it belongs
to becomes urgent and the console highlights it. It leans to over-triage: only a negation cue
right before the word cancels it. The red-flag screen of issue #14 (triage) will replace this.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

DATA_FILE = Path(__file__).with_name("urgent_words.yml")
#: Message.extra key: {"words": [...], "version": "..."} on a patient's message that named some.
MARK_KEY = "urgent_words"
#: Fillers that may stand between a negation and the word, at most this many ("没有什么明显胸痛").
MAX_FILLERS = 2
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class UrgentWords:
    version: str
    words: tuple[str, ...]
    negations: tuple[str, ...]
    fillers: tuple[str, ...]
    never_negated: frozenset[str]

    @classmethod
    def of(cls, data: dict[str, Any]) -> UrgentWords:
        def strings(key: str) -> tuple[str, ...]:
            values = data.get(key) or []
            if not isinstance(values, list) or not all(isinstance(v, str) and v for v in values):
                raise ValueError(f"urgent words: '{key}' must be a list of words")
            return tuple(values)

        version = data.get("version")
        if not isinstance(version, str) or not version:
            raise ValueError("urgent words: 'version' is missing")
        words = strings("words")
        if not words:
            raise ValueError("urgent words: 'words' is empty")
        by_length = functools.partial(sorted, key=len, reverse=True)
        return cls(
            version=version,
            words=words,
            negations=tuple(by_length(strings("negations"))),
            fillers=tuple(by_length(strings("fillers"))),
            never_negated=frozenset(strings("never_negated")),
        )

    def find(self, text: str) -> list[str]:
        """The urgent words `text` names, not negated, in the order of the list."""
        plain = _SPACE.sub("", text)
        return [word for word in self.words if self._named(plain, word)]

    def mark(self, text: str) -> dict[str, Any] | None:
        """What a message naming urgent words carries in `extra[MARK_KEY]`; None for no word."""
        found = self.find(text)
        return {"words": found, "version": self.version} if found else None

    def _named(self, text: str, word: str) -> bool:
        start = text.find(word)
        while start >= 0:
            if word in self.never_negated or not self._negated(text[:start]):
                return True
            start = text.find(word, start + 1)
        return False

    def _negated(self, before: str) -> bool:
        """Does the text right before a word end with a negation cue (after up to MAX_FILLERS)?"""
        for _ in range(MAX_FILLERS + 1):
            cue = next((c for c in self.negations if before.endswith(c)), None)
            if cue is not None:
                # "有没有胸痛" asks; it does not deny.
                return not (cue.startswith("没") and before[: -len(cue)].endswith("有"))
            filler = next((f for f in self.fillers if before.endswith(f)), None)
            if filler is None:
                return False
            before = before[: -len(filler)]
        return False


def load(path: Path = DATA_FILE) -> UrgentWords:
    with path.open(encoding="utf-8") as handle:
        data = yaml.safe_load(handle)
    if not isinstance(data, dict):
        raise ValueError(f"urgent words: {path} is not a mapping")
    return UrgentWords.of(data)


@functools.cache
def current() -> UrgentWords:
    """The list in use, read once per process."""
    return load()
