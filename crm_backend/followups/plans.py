"""What a follow-up plan (随访计划) says: its time points and their questionnaires, as typed data.

A plan's definition is stored as JSON on each of its versions (models.FollowupPlanVersion) and read
back through these models, so the console, the bot API, the mobile page, the FHIR export and the
shipped plans (`shipped_plans.yml`) all share one shape and one set of checks. The thresholds in a
definition are clinical content: clinicians confirm them before patients see them.
"""

from __future__ import annotations

import enum
import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

#: Question and plan codes: short, stable, safe in URLs, FHIR linkIds and Rasa slot names.
Code = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")]


class Flag(enum.StrEnum):
    """How worrying an answer is. Ordered: `worst()` picks the most worrying."""

    green = "green"
    #: A nurse contacts the patient within 24 hours.
    amber = "amber"
    #: A nurse contacts the patient now; the patient is told what to do now.
    red = "red"
    #: Call 120 or go to the emergency department now.
    emergency = "emergency"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {Flag.green: 0, Flag.amber: 1, Flag.red: 2, Flag.emergency: 3}


def worst(flags: list[Flag] | tuple[Flag, ...]) -> Flag:
    return max(flags, key=lambda flag: flag.rank, default=Flag.green)


class QuestionType(enum.StrEnum):
    #: 0–10 (NRS pain); the value is an int.
    scale = "scale"
    #: The value is a bool.
    yes_no = "yes_no"
    #: A number with a unit and an allowed range (temperature 35–42 °C); the value is a float.
    number = "number"
    #: One of `choices`; the value is the choice's code.
    single_choice = "single_choice"
    #: Any of `choices`; the value is a list of codes (empty: none of them).
    multiple_choice = "multiple_choice"
    #: Words; the value is the text. The red-flag screen reads it.
    free_text = "free_text"


def _problem(kind: str, english: str, **context: str | int) -> PydanticCustomError:
    """A check that failed, typed `plan_<kind>` with its context (question code, field, index) so
    the console can say it in Chinese at the field it names (plan_problems.py); the English
    message stays for logs and Python callers."""
    return PydanticCustomError(f"plan_{kind}", english, context)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Choice(_Strict):
    code: Code
    #: What the patient reads (numbered in chat: "1. 没有").
    text: str = Field(min_length=1, max_length=60)
    #: Other ways a patient may say it ("不红", "正常").
    synonyms: list[str] = Field(default_factory=list)


class FlagRule(_Strict):
    """An answer matching this rule raises `flag`. Numbers: `at_least`/`at_most` (inclusive);
    yes/no: `equals`; choices: `any_of` (a multiple choice matches when it holds any of them)."""

    flag: Flag
    at_least: float | None = None
    at_most: float | None = None
    equals: bool | None = None
    any_of: list[Code] = Field(default_factory=list)
    #: What the patient is told to do for this finding (red and emergency: what to do now).
    advice: str = Field(default="", max_length=300)

    @model_validator(mode="after")
    def _one_test(self) -> FlagRule:
        tests = [
            self.at_least is not None or self.at_most is not None,
            self.equals is not None,
            bool(self.any_of),
        ]
        if sum(tests) != 1:
            raise _problem(
                "rule_tests", "a flag rule tests exactly one of: a range (at_least/at_most), equals, any_of"
            )
        return self


class EnableWhen(_Strict):
    """Ask a question only when an earlier answer matched (wound red → ask about discharge)."""

    question: Code
    equals: bool | None = None
    any_of: list[Code] = Field(default_factory=list)
    at_least: float | None = None

    @model_validator(mode="after")
    def _one_test(self) -> EnableWhen:
        if sum([self.equals is not None, bool(self.any_of), self.at_least is not None]) != 1:
            raise _problem("condition_tests", "enable_when tests exactly one of: equals, any_of, at_least")
        return self


class Question(_Strict):
    code: Code
    text: str = Field(min_length=1, max_length=200)
    type: QuestionType
    #: number: the unit the patient reads ("°C"); scale: "分".
    unit: str = Field(default="", max_length=16)
    #: number and scale: the allowed range (inclusive). A scale is always 0–10.
    minimum: float | None = None
    maximum: float | None = None
    choices: list[Choice] = Field(default_factory=list)
    flags: list[FlagRule] = Field(default_factory=list)
    enable_when: EnableWhen | None = None
    #: A hint for a re-ask ("请回复 0 到 10 之间的数字").
    hint: str = Field(default="", max_length=120)

    @model_validator(mode="after")
    def _consistent(self) -> Question:
        kind = self.type
        if kind == QuestionType.scale:
            if (self.minimum, self.maximum) not in ((None, None), (0, 10)):
                raise _problem(
                    "scale_range", "{question}: a scale question is 0–10", question=self.code, field="minimum"
                )
        if kind == QuestionType.number and (self.minimum is None or self.maximum is None):
            field = "minimum" if self.minimum is None else "maximum"
            raise _problem(
                "range_missing",
                "{question}: a number question needs minimum and maximum",
                question=self.code,
                field=field,
            )
        if self.minimum is not None and self.maximum is not None and self.minimum >= self.maximum:
            raise _problem(
                "min_max", "{question}: minimum must be below maximum", question=self.code, field="minimum"
            )
        has_choices = kind in (QuestionType.single_choice, QuestionType.multiple_choice)
        if has_choices and len(self.choices) < 2:
            raise _problem(
                "choices_too_few",
                "{question}: a choice question needs at least two choices",
                question=self.code,
                field="choices",
            )
        if not has_choices and self.choices:
            raise _problem(
                "choices_not_allowed",
                "{question}: only choice questions have choices",
                question=self.code,
                field="choices",
            )
        codes = [choice.code for choice in self.choices]
        if len(set(codes)) != len(codes):
            raise _problem(
                "choice_codes_repeat", "{question}: choice codes repeat", question=self.code, field="choices"
            )
        for index, rule in enumerate(self.flags):
            where = {"question": self.code, "field": "flags", "index": index}
            numeric = rule.at_least is not None or rule.at_most is not None
            if numeric and kind not in (QuestionType.scale, QuestionType.number):
                raise _problem(
                    "rule_range_type", "{question}: a range rule needs a scale or number question", **where
                )
            if rule.equals is not None and kind != QuestionType.yes_no:
                raise _problem(
                    "rule_equals_type", "{question}: an equals rule needs a yes/no question", **where
                )
            if rule.any_of and not set(rule.any_of) <= set(codes):
                raise _problem(
                    "rule_choice_unknown",
                    "{question}: a flag rule names a choice the question does not have",
                    **where,
                )
            if kind == QuestionType.free_text:
                raise _problem(
                    "rule_free_text",
                    "{question}: free text is read by the red-flag screen, not by rules",
                    **where,
                )
        return self

    @property
    def low(self) -> float:
        return 0 if self.type == QuestionType.scale else float(self.minimum or 0)

    @property
    def high(self) -> float:
        return 10 if self.type == QuestionType.scale else float(self.maximum or 0)


class Questionnaire(_Strict):
    questions: list[Question] = Field(min_length=1)

    @model_validator(mode="after")
    def _references(self) -> Questionnaire:
        seen: dict[str, Question] = {}
        for index, question in enumerate(self.questions):
            where = {"question": question.code, "field": "enable_when", "index": index}
            if question.code in seen:
                raise _problem(
                    "question_code_repeats", "question code {question} repeats", **{**where, "field": "code"}
                )
            condition = question.enable_when
            if condition is not None:
                earlier = seen.get(condition.question)
                if earlier is None:
                    raise _problem(
                        "condition_not_earlier",
                        "{question}: enable_when must name an earlier question",
                        **where,
                    )
                if condition.any_of and not set(condition.any_of) <= {c.code for c in earlier.choices}:
                    raise _problem(
                        "condition_choice_unknown",
                        "{question}: enable_when names a choice {earlier} lacks",
                        earlier=earlier.code,
                        **where,
                    )
                if condition.equals is not None and earlier.type != QuestionType.yes_no:
                    raise _problem(
                        "condition_equals_type",
                        "{question}: enable_when equals needs a yes/no question",
                        **where,
                    )
                numeric = (QuestionType.scale, QuestionType.number)
                if condition.at_least is not None and earlier.type not in numeric:
                    raise _problem(
                        "condition_at_least_type",
                        "{question}: enable_when at_least needs a scale or number question",
                        **where,
                    )
            seen[question.code] = question
        return self

    def question(self, code: str) -> Question:
        for question in self.questions:
            if question.code == code:
                return question
        raise KeyError(code)


class TimePoint(_Strict):
    """One contact: `day` days after the anchor date, at `hour` o'clock hospital time."""

    day: int = Field(ge=0, le=3650)
    hour: int = Field(ge=0, le=23, default=10)
    questionnaire: Questionnaire


class ProcedureMatch(_Strict):
    """A procedure or diagnosis the plan applies to: the words a HIS writes, and its codes."""

    text: str = Field(min_length=1, max_length=100)
    #: Other names of it ("LC", "腹腔镜下胆囊切除").
    synonyms: list[str] = Field(default_factory=list)
    #: Procedure (ICD-9-CM-3, e.g. "51.23") or diagnosis codes: matched on the code alone.
    codes: list[str] = Field(default_factory=list)


class PlanDefinition(_Strict):
    """One version of a plan, as clinicians wrote it."""

    code: Code
    name: str = Field(min_length=1, max_length=80)
    anchor: Literal["discharge", "surgery"] = "discharge"
    procedures: list[ProcedureMatch] = Field(min_length=1)
    time_points: list[TimePoint] = Field(min_length=1)
    #: Who wrote and who confirmed the clinical content; shown in the plan editor.
    review_note: str = Field(default="", max_length=300)

    @model_validator(mode="after")
    def _days_rise(self) -> PlanDefinition:
        days = [point.day for point in self.time_points]
        for index in range(1, len(days)):
            if days[index] <= days[index - 1]:
                raise _problem(
                    "days_order",
                    "time points must be on distinct days, in order",
                    field="time_points",
                    index=index,
                )
        return self


def normalise_procedure(text: str) -> str:
    """How procedure names are compared: no spaces or punctuation, lower case (HIS texts vary)."""
    return re.sub(r"[\s\-_,，。.、()（）]", "", text).lower()
