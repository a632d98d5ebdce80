"""Answers to everyday post-operative questions asked in the middle of a check-in ("能洗澡吗").

The answers are reviewable data (care_answers.yml, versioned, for clinicians to confirm). A question
that no entry answers is passed to the enrolment's nurses when the check-in ends (bot_views.py).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

CARE_ANSWERS_FILE = Path(__file__).with_name("care_answers.yml")


@dataclass(frozen=True)
class CareAnswer:
    key: str
    keywords: tuple[tuple[str, ...], ...]
    answer: str

    def score(self, text: str) -> int:
        """Characters matched, one keyword per group; 0 when a group has no word in the text."""
        total = 0
        for group in self.keywords:
            found = [word for word in group if word in text]
            if not found:
                return 0
            total += max(len(word) for word in found)
        return total


@dataclass(frozen=True)
class CareAnswers:
    version: str
    entries: tuple[CareAnswer, ...]


@functools.cache
def care_answers() -> CareAnswers:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    data: dict[str, Any] = yaml.load(CARE_ANSWERS_FILE.read_text(encoding="utf-8"), Loader=loader)
    entries = tuple(
        CareAnswer(
            key=str(entry["key"]),
            keywords=tuple(tuple(str(word) for word in group) for group in entry["keywords"]),
            answer=str(entry["answer"]).strip(),
        )
        for entry in data["entries"]
    )
    return CareAnswers(version=str(data["version"]), entries=entries)


def answer_for(text: str) -> CareAnswer | None:
    """The entry that answers the question best, or None (then a nurse answers it)."""
    scored = [(entry.score(text), entry) for entry in care_answers().entries]
    best = max(scored, key=lambda pair: pair[0], default=(0, None))
    return best[1] if best[0] > 0 else None
