"""The red-flag rules file (red_flags.yml), checked and compiled once: named word lists in patients'
own words and the rules that combine them. The clinical content is the YAML; this is its reader.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import yaml

from crm_backend.triage.who_is_ill import NUMBER

RULES_FILE = Path(__file__).with_name("red_flags.yml")

_TOKENS = {
    "{t}": r"(?:3[89]|4[0-2]|三十[八九]|四十[一二]?)(?:[.点][\d一二三四五六七八九])?",
    "{tdec}": r"(?<!\d)(?:3[89]|4[0-2])\.\d(?!\d)",  # 38.1: a bare decimal in this range is a temperature
    "{high}": r"(?:1[4-9]\d|2\d\d|一百[四五六七八九]|[两二]百)",
    "{num}": NUMBER,
    "{many}": r"(?:[1-9]\d|[二三四五六七八九]?十[一二三四五六七八九]?|几十|十几|一百|上百)[多几]?",
    "{spo2}": r"(?:[4-8]\d|9[0-2])",
    "{glucose}": r"(?:2[5-9]|[3-9]\d)(?:\.\d)?",
}
# Words are matched within one clause, which holds no punctuation, so a gap needs no character class.
_GAP = r"(.{0,6}?)"


@dataclass(frozen=True)
class Term:
    """A named word list: one expression to find any of its words, the gapped words alone (to look
    inside their gaps for a negation), and the phrases that do not count."""

    name: str
    finder: re.Pattern[str]
    patterns: tuple[re.Pattern[str], ...]
    excepted: re.Pattern[str] | None


@dataclass(frozen=True)
class Rule:
    """One red flag as the YAML states it."""

    id: str
    name: str
    advice: str
    match: tuple[tuple[str, ...], ...]
    requires: dict[str, object] = field(default_factory=dict)
    unless: tuple[str, ...] = ()
    unless_overridden_by: tuple[str, ...] = ()
    counts_when_resolved: bool = True


@dataclass(frozen=True)
class RuleBook:
    """The rules file, compiled."""

    version: str
    date: str
    status: str
    call_to_action: str
    terms: tuple[Term, ...]
    rules: tuple[Rule, ...]
    corrections: dict[str, str]
    spelling: re.Pattern[str]


def _regex_of(word: str) -> str:
    """A rule's word as a regular expression: `*` is a short gap, `{t}`/`{high}`/`{num}` numbers."""
    parts = re.split(r"(\*|\{[a-z0-9]+\})", word.lower())
    out = []
    for part in parts:
        if part == "*":
            out.append(_GAP)
        elif part.startswith("{") and part.endswith("}"):
            out.append(_TOKENS[part])  # an unknown token fails here, at import
        else:
            out.append(re.escape(part))
    return "".join(out)


def _compile_term(name: str, spec: object) -> Term:
    if isinstance(spec, dict):
        words, excepted = list(spec["words"]), list(spec.get("except", []))
    else:
        words, excepted = list(spec), []  # type: ignore[call-overload]
    words = sorted({str(w) for w in words}, key=len, reverse=True)
    regexes = [_regex_of(w) for w in words]
    return Term(
        name=name,
        finder=re.compile("|".join(f"(?:{r})" for r in regexes)),
        # Only words with a gap can hide a negation inside the match (胸口不疼).
        patterns=tuple(re.compile(r) for w, r in zip(words, regexes, strict=True) if "*" in w),
        excepted=re.compile("|".join(_regex_of(str(w)) for w in excepted)) if excepted else None,
    )


def load_rules(path: Path = RULES_FILE) -> RuleBook:
    """Read and check the rules file: every rule names terms that exist, and it has a version."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: 10 times faster at start-up
    data = yaml.load(path.read_text(encoding="utf-8"), Loader=loader)
    terms = {name: _compile_term(name, spec) for name, spec in data["terms"].items()}
    rules = []
    seen: set[str] = set()
    for raw in data["rules"]:
        rule = Rule(
            id=raw["id"],
            name=raw["name"],
            advice=raw["advice"],
            match=tuple(tuple(alternative) for alternative in raw["match"]),
            requires=dict(raw.get("requires") or {}),
            unless=tuple(raw.get("unless") or ()),
            unless_overridden_by=tuple(raw.get("unless_overridden_by") or ()),
            counts_when_resolved=bool(raw.get("counts_when_resolved", True)),
        )
        unknown = {t for alt in rule.match for t in alt} | set(rule.unless) | set(rule.unless_overridden_by)
        unknown -= set(terms)
        if unknown or rule.id in seen:
            raise ValueError(f"rule {rule.id}: unknown terms {sorted(unknown)} or a repeated id")
        if set(rule.requires) - {"infant_max_months", "pregnant", "post_op", "child"}:
            raise ValueError(f"rule {rule.id}: unknown requirement in {rule.requires}")
        seen.add(rule.id)
        rules.append(rule)
    if not str(data.get("version", "")).strip():
        raise ValueError("the red-flag rules have no version")
    corrections = {str(k).lower(): str(v).lower() for k, v in (data.get("spelling") or {}).items()}
    if any(len(wrong) != len(right) for wrong, right in corrections.items()):
        raise ValueError("a spelling correction must keep the length (mentions index the original text)")
    return RuleBook(
        version=str(data["version"]),
        date=str(data["date"]),
        status=str(data["status"]),
        call_to_action=str(data["call_to_action"]),
        terms=tuple(terms.values()),
        rules=tuple(rules),
        corrections=corrections,
        spelling=re.compile("|".join(map(re.escape, sorted(corrections, key=len, reverse=True))) or "(?!)"),
    )


@cache
def rule_book() -> RuleBook:
    return load_rules()
