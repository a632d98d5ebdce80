"""The triage data: each department's patient-facing description, symptom terms, ages and sex, and
the urgency words, read from `departments.yml` (clinicians review that file) or from the database
(staff edit it there).

A term is written for people, not programmers: "/" separates alternatives and "…" allows a few
characters between two parts ("腹痛/肚子…疼" matches "腹痛" and "肚子有点疼"). `compile_term` turns
that into one regular expression; terms are validated with it when staff edit them, so a bad term is
refused, not stored.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

DATA_FILE = Path(__file__).with_name("departments.yml")

#: "…" between two parts of a term: at most this many characters, none of them a clause break.
GAP = r"[^，。,.!?！？；;、\s]{0,6}?"
TERM_MAX_CHARS = 200


class Sex(enum.StrEnum):
    FEMALE = "female"
    MALE = "male"


class BadTerm(ValueError):
    """A symptom term that cannot be read (empty part, too long)."""


@dataclass(frozen=True, slots=True)
class SymptomTerm:
    term: str
    weight: float = 1.0


@dataclass(frozen=True, slots=True)
class DepartmentProfile:
    """What triage knows about one department of this hospital."""

    code: str
    #: The name patients are shown.
    name: str
    description: str = ""
    aliases: tuple[str, ...] = ()
    terms: tuple[SymptomTerm, ...] = ()
    #: Ages (years, inclusive) the department sees; None = no limit.
    min_age: int | None = None
    max_age: int | None = None
    #: Only this sex, or None for everybody.
    sex: Sex | None = None
    #: Database id when the profile was read from the database.
    id: int | None = None

    def sees_age(self, age_years: int) -> bool:
        return (self.min_age is None or age_years >= self.min_age) and (
            self.max_age is None or age_years <= self.max_age
        )


@dataclass(frozen=True, slots=True)
class SelfCareAdvice:
    terms: tuple[str, ...]
    advice: str


@dataclass(frozen=True, slots=True)
class Clarification:
    between: frozenset[str]
    question: str


@dataclass(frozen=True, slots=True)
class UrgencyWords:
    urgent: tuple[str, ...] = ()
    self_care: tuple[SelfCareAdvice, ...] = ()
    long_standing: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TriageData:
    """Everything the recommender reads besides the patient's words."""

    version: str
    departments: tuple[DepartmentProfile, ...]
    clarifications: tuple[Clarification, ...] = ()
    levels: UrgencyWords = field(default_factory=UrgencyWords)

    def with_departments(self, departments: Iterable[DepartmentProfile]) -> TriageData:
        """The same rules over another hospital's departments (e.g. as staff edited them)."""
        return TriageData(self.version, tuple(departments), self.clarifications, self.levels)

    def question_between(self, first: str, second: str) -> str | None:
        pair = frozenset((first, second))
        return next((c.question for c in self.clarifications if c.between == pair), None)


@cache
def compile_term(term: str) -> re.Pattern[str]:
    """The regular expression of a staff-written term; BadTerm if it cannot be one."""
    term = term.strip()
    if not term or len(term) > TERM_MAX_CHARS:
        raise BadTerm(f"a term has 1 to {TERM_MAX_CHARS} characters")
    alternatives = []
    for alternative in term.split("/"):
        parts = [part.strip() for part in alternative.split("…")]
        if not all(parts):
            raise BadTerm(f"empty alternative or part in {term!r}")
        alternatives.append(GAP.join(re.escape(part) for part in parts))
    # Longest first: at one position "牙疼" is read rather than the "牙" it starts with.
    alternatives.sort(key=len, reverse=True)
    return re.compile("|".join(alternatives), re.IGNORECASE)


def _terms(raw: Mapping[str, Any] | None) -> tuple[SymptomTerm, ...]:
    return tuple(SymptomTerm(str(term), float(weight)) for term, weight in (raw or {}).items())


def profile_from_data(code: str, raw: Mapping[str, Any]) -> DepartmentProfile:
    return DepartmentProfile(
        code=code,
        name=raw["name"],
        description=raw.get("description", ""),
        aliases=tuple(raw.get("aliases", ())),
        terms=_terms(raw.get("terms")),
        min_age=raw.get("min_age"),
        max_age=raw.get("max_age"),
        sex=Sex(raw["sex"]) if raw.get("sex") else None,
    )


def parse_triage_data(raw: Mapping[str, Any]) -> TriageData:
    levels = raw.get("levels", {})
    data = TriageData(
        version=str(raw["version"]),
        departments=tuple(profile_from_data(code, dep) for code, dep in raw["departments"].items()),
        clarifications=tuple(
            Clarification(frozenset(c["between"]), c["question"]) for c in raw.get("clarify", ())
        ),
        levels=UrgencyWords(
            urgent=tuple(levels.get("urgent", ())),
            self_care=tuple(
                SelfCareAdvice(tuple(group["terms"]), group["advice"])
                for group in levels.get("self_care", ())
            ),
            long_standing=tuple(levels.get("long_standing", ())),
        ),
    )
    for profile in data.departments:  # a bad term in the file fails at load, not in a patient's chat
        for term in profile.terms:
            compile_term(term.term)
    for word in (*data.levels.urgent, *data.levels.long_standing):
        compile_term(word)
    return data


@cache
def load_triage_data(path: Path = DATA_FILE) -> TriageData:
    """The reviewed data file (cached: it changes with a release, not at run time)."""
    return parse_triage_data(yaml.safe_load(path.read_text(encoding="utf-8")))
