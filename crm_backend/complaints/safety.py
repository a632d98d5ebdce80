"""Whether a complaint signals a risk to patients (a wrong medicine, a fall, a patient left without
care …): such a case is escalated to staff at once, urgent, as well as registered.

The phrases are data a patient-safety officer reviews (safety_risks.yml, versioned, a draft until
signed); this module only reads them. Over-triage on purpose: a phrase counts wherever it appears
in what the patient wrote, unless a negation stands right before it or inside its gap.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

RISKS_FILE = Path(__file__).with_name("safety_risks.yml")
#: A `*` in a phrase: up to this many characters in between.
GAP = r"(.{0,6}?)"
_CLAUSES = re.compile(r"[，,。.！!？?；;\n]+")
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class Risk:
    id: str
    name: str
    patterns: tuple[re.Pattern[str], ...]


@dataclass(frozen=True)
class RiskBook:
    version: str
    negations: tuple[str, ...]
    risks: tuple[Risk, ...]


@dataclass(frozen=True)
class SafetyCheck:
    """The risks found (ids, in the file's order) and the version of the phrases that found them."""

    risks: tuple[str, ...]
    version: str

    @property
    def safety_risk(self) -> bool:
        return bool(self.risks)


def _pattern(phrase: str) -> re.Pattern[str]:
    return re.compile(GAP.join(re.escape(part) for part in phrase.split("*")))


@cache
def risk_book(path: Path = RISKS_FILE) -> RiskBook:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    risks = tuple(
        Risk(str(item["id"]), str(item["name"]), tuple(_pattern(str(p)) for p in item["phrases"]))
        for item in data["risks"]
    )
    ids = [risk.id for risk in risks]
    if len(set(ids)) != len(ids):
        raise ValueError(f"{path}: a risk id is used twice")
    # Longest first, so 并没有 is seen before the 没有 inside it.
    negations = tuple(sorted((str(n) for n in data.get("negations") or []), key=len, reverse=True))
    return RiskBook(str(data["version"]), negations, risks)


def _negated(clause: str, match: re.Match[str], negations: tuple[str, ...]) -> bool:
    """A negation right before the phrase (没有摔倒) or inside one of its gaps (药没发错)."""
    before = clause[: match.start()]
    gaps = [gap for gap in match.groups() if gap]
    return any(before.endswith(word) or any(word in gap for gap in gaps) for word in negations)


def _found(risk: Risk, clauses: list[str], negations: tuple[str, ...]) -> bool:
    for clause in clauses:
        for pattern in risk.patterns:
            for match in pattern.finditer(clause):
                if not _negated(clause, match, negations):
                    return True
    return False


def assess(*texts: str | None) -> SafetyCheck:
    """The safety risks in what the patient wrote (every part of the intake, or an addition)."""
    book = risk_book()
    clauses = [clause for text in texts if text for clause in _CLAUSES.split(_SPACES.sub("", text)) if clause]
    found = tuple(risk.id for risk in book.risks if _found(risk, clauses, book.negations))
    return SafetyCheck(found, book.version)
