"""One triage decision for one message: the red-flag screen first, then departments and urgency.

The chat (through the bot API, `POST /internal/bot/triage`) and other systems get the same answer
from here; its JSON shape is a fixed contract (`TriageAnswer`).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field

from crm_backend.triage.catalogue import DepartmentProfile
from crm_backend.triage.departments import Level, Recommendation, recommend
from crm_backend.triage.red_flags import RedFlagResult, ScreenContext, screen

#: The longest description the triage answers; a longer message is cut here, not refused.
MAX_TEXT_CHARS = 1000


class TriageLevel(enum.StrEnum):
    EMERGENCY = "emergency"
    URGENT = "urgent"
    ROUTINE = "routine"
    SELF_CARE = "self_care"


class DepartmentRef(BaseModel):
    code: str
    name: str


class TriageRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=MAX_TEXT_CHARS)


class TriageAnswer(BaseModel):
    """The contract of `POST /internal/bot/triage`: do not change its fields."""

    level: TriageLevel
    red_flags: list[str]
    departments: list[DepartmentRef]
    answer: str


class Assessment(BaseModel):
    """The answer and what it was decided from, kept for staff to review."""

    model_config = ConfigDict(frozen=True)

    answer: TriageAnswer
    screen: RedFlagResult
    recommendation: Recommendation | None


def emergency_text(result: RedFlagResult) -> str:
    """Call 120 / go to the emergency department now, then what to do meanwhile; never a booking."""
    lines = [result.call_to_action]
    seen: set[str] = set()
    for flag in result.flags:
        if flag.advice and flag.advice not in seen:
            seen.add(flag.advice)
            lines.append(flag.advice)
    return "\n".join(lines)


def assess(
    text: str,
    *,
    departments: Sequence[DepartmentProfile] | None = None,
    context: ScreenContext | None = None,
    age_years: int | None = None,
    sex: str | None = None,
) -> Assessment:
    """Red flags decide first and alone; only without one are departments recommended."""
    text = text[:MAX_TEXT_CHARS]
    result = screen(text, context=context)
    if result.emergency:
        emergency_dept = [DepartmentRef(code="EMER", name="急诊科")]
        answer = TriageAnswer(
            level=TriageLevel.EMERGENCY,
            red_flags=list(result.rule_ids),
            departments=emergency_dept,
            answer=emergency_text(result),
        )
        return Assessment(answer=answer, screen=result, recommendation=None)
    pregnant = context.pregnant if context is not None else None
    recommendation = recommend(text, age_years=age_years, sex=sex, pregnant=pregnant, departments=departments)
    answer = TriageAnswer(
        level=TriageLevel(recommendation.level.value),
        red_flags=[],
        departments=[DepartmentRef(code=d.code, name=d.name) for d in recommendation.departments[:3]],
        # Not understood: empty, so the dialogue asks for more; unless an urgency word was heard,
        # which is answered at once (go today) whatever the department.
        answer=recommendation.patient_text()
        if recommendation.understood or recommendation.level is Level.URGENT
        else "",
    )
    return Assessment(answer=answer, screen=result, recommendation=recommendation)
