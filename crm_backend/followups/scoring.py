"""How a check-in's answers are read against its questionnaire: which question comes next, whether an
answer is allowed, and which flag it raises. One reading for every channel (chat, mobile page,
phone), so a patient's answer means the same wherever it was given.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from crm_backend.followups.plans import (
    EnableWhen,
    Flag,
    FlagRule,
    Question,
    Questionnaire,
    QuestionType,
    worst,
)
from crm_backend.triage.departments import URGENT_ADVICE
from crm_backend.triage.red_flags import ScreenContext, Status
from crm_backend.triage.service import TriageLevel, emergency_text
from crm_backend.triage.service import assess as triage

#: Answers by question code: int (scale), bool (yes/no), float (number), str (single choice code or
#: free text), list[str] (multiple choice codes).
Answers = dict[str, Any]


class AnswerRefused(ValueError):
    """A value the question does not allow (out of range, not one of its choices, wrong type)."""


def check_value(question: Question, value: Any) -> Any:
    """`value` as stored for `question`, or AnswerRefused saying what is allowed."""
    kind = question.type
    if kind in (QuestionType.scale, QuestionType.number):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise AnswerRefused(f"{question.code}: a number is needed")
        if not question.low <= value <= question.high:
            raise AnswerRefused(f"{question.code}: {value:g} is outside {question.low:g}–{question.high:g}")
        if kind == QuestionType.scale:
            if value != int(value):
                raise AnswerRefused(f"{question.code}: a whole number from 0 to 10 is needed")
            return int(value)
        return float(value)
    if kind == QuestionType.yes_no:
        if not isinstance(value, bool):
            raise AnswerRefused(f"{question.code}: yes or no is needed")
        return value
    codes = [choice.code for choice in question.choices]
    if kind == QuestionType.single_choice:
        if value not in codes:
            raise AnswerRefused(f"{question.code}: one of {', '.join(codes)} is needed")
        return value
    if kind == QuestionType.multiple_choice:
        if not isinstance(value, list) or not all(item in codes for item in value):
            raise AnswerRefused(f"{question.code}: a list of {', '.join(codes)} is needed")
        return sorted(set(value), key=codes.index)
    if not isinstance(value, str) or not value.strip():
        raise AnswerRefused(f"{question.code}: some words are needed")
    return value.strip()[:1000]


def _rule_matches(rule: FlagRule, value: Any) -> bool:
    if rule.at_least is not None or rule.at_most is not None:
        low = rule.at_least if rule.at_least is not None else float("-inf")
        high = rule.at_most if rule.at_most is not None else float("inf")
        return low <= value <= high
    if rule.equals is not None:
        return value is rule.equals
    chosen = set(value) if isinstance(value, list) else {value}
    return bool(chosen & set(rule.any_of))


@dataclass(frozen=True)
class Finding:
    """The flag one answer raised, with what the patient is told to do about it."""

    question: str
    flag: Flag
    advice: str = ""
    #: Red-flag rule ids of the triage screen (free text only).
    red_flags: tuple[str, ...] = ()


#: Red-flag words that did not make an emergency because they have passed ("刚才胸痛，现在好了"):
#: after an operation still worth a nurse's call.
_PASSED = (Status.RESOLVED, Status.PAST)


def _free_text_finding(question: Question, text: str) -> Finding:
    """Triage's reading of a free-text answer, after an operation: an emergency (the red-flag
    screen) is emergency; words triage sends to a doctor today ("高烧", "越来越疼") are red with
    that advice; a red-flag symptom that has passed is amber. Over-triage: words never stay green
    when triage hears something worrying in them."""
    triaged = triage(text, context=ScreenContext(post_op=True))
    result = triaged.screen
    if result.emergency:
        return Finding(question.code, Flag.emergency, emergency_text(result), result.rule_ids)
    if triaged.answer.level == TriageLevel.URGENT:
        return Finding(question.code, Flag.red, URGENT_ADVICE)
    if any(mention.status in _PASSED for mention in result.set_aside):
        return Finding(question.code, Flag.amber)
    return Finding(question.code, Flag.green)


def assess_answer(question: Question, value: Any) -> Finding:
    """The most worrying flag the answer raises; free text is read by triage (_free_text_finding)."""
    if question.type == QuestionType.free_text:
        return _free_text_finding(question, str(value))
    matching = [rule for rule in question.flags if _rule_matches(rule, value)]
    if not matching:
        return Finding(question.code, Flag.green)
    rule = max(matching, key=lambda r: r.flag.rank)
    return Finding(question.code, rule.flag, rule.advice)


def _condition_met(condition: EnableWhen, answers: Answers) -> bool:
    if condition.question not in answers:
        return False
    value = answers[condition.question]
    if condition.equals is not None:
        return value is condition.equals
    if condition.at_least is not None:
        return isinstance(value, int | float) and not isinstance(value, bool) and value >= condition.at_least
    chosen = set(value) if isinstance(value, list) else {value}
    return bool(chosen & set(condition.any_of))


def is_enabled(question: Question, answers: Answers) -> bool:
    """Whether the question is asked, given the answers so far (its condition, if any, is met)."""
    return question.enable_when is None or _condition_met(question.enable_when, answers)


def next_question(questionnaire: Questionnaire, answers: Answers) -> Question | None:
    """The first question asked and not answered yet; None when the check-in is complete."""
    for question in questionnaire.questions:
        if question.code not in answers and is_enabled(question, answers):
            return question
    return None


def relevant_answers(questionnaire: Questionnaire, answers: Answers) -> Answers:
    """The answers that count: an answer to a question whose condition a later correction undid
    (the wound is no longer red) is left out of flags and summaries."""
    kept: Answers = {}
    for question in questionnaire.questions:
        if question.code in answers and is_enabled(question, kept):
            kept[question.code] = answers[question.code]
    return kept


@dataclass(frozen=True)
class Assessment:
    findings: tuple[Finding, ...]

    @property
    def flag(self) -> Flag:
        return worst([finding.flag for finding in self.findings])

    @property
    def advice(self) -> list[str]:
        """What to do now, most worrying first, each line once."""
        ordered = sorted(self.findings, key=lambda f: -f.flag.rank)
        return list(dict.fromkeys(f.advice for f in ordered if f.advice and f.flag.rank >= Flag.red.rank))

    @property
    def worrying(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.flag != Flag.green)


def assess(questionnaire: Questionnaire, answers: Answers) -> Assessment:
    kept = relevant_answers(questionnaire, answers)
    return Assessment(
        tuple(assess_answer(questionnaire.question(code), value) for code, value in kept.items())
    )
