"""Why a plan definition was refused, in Chinese, at the field it names: what the console's plan
editor shows a clinician next to the input to fix.

plans.py raises its checks typed `plan_<kind>` with a context (question code, the field, a rule's or
question's index); pydantic's own checks (empty text, a code's pattern, a day out of range) have
their standard types. Each type has one Chinese sentence here, and the location is made as precise as
the context allows (`…questions.1.minimum`, `…questions.1.flags.0`), so `loc` stays machine-readable
for the page and for API clients.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError

#: The checks in plans.py, by type.
_PLAN = {
    "plan_rule_tests": "一条提醒规则只能有一种判断：范围（≥ / ≤）、是 / 否，或所选选项",
    "plan_condition_tests": "提问条件只能有一种判断：是 / 否、所选选项，或 ≥ 某个数",
    "plan_scale_range": "评分题固定为 0–10 分，不能改范围",
    "plan_range_missing": "数值题需要填写最小值和最大值",
    "plan_min_max": "最小值必须小于最大值",
    "plan_choices_too_few": "单选或多选题至少需要两个选项",
    "plan_choices_not_allowed": "只有单选或多选题可以有选项",
    "plan_choice_codes_repeat": "选项代码有重复",
    "plan_rule_range_type": "“≥ / ≤”规则只能用于评分题或数值题",
    "plan_rule_equals_type": "“是 / 否”规则只能用于是否题",
    "plan_rule_choice_unknown": "提醒规则里选了本题没有的选项",
    "plan_rule_free_text": "文字题由危急征象筛查判断，不能设提醒规则",
    "plan_question_code_repeats": "同一时间点里问题代码“{question}”重复",
    "plan_condition_not_earlier": "提问条件必须引用本时间点里排在这道题前面的问题",
    "plan_condition_choice_unknown": "提问条件里选了问题“{earlier}”没有的选项",
    "plan_condition_equals_type": "“答是 / 否时才问”的条件须引用一道是否题",
    "plan_condition_at_least_type": "“≥ 某个数时才问”的条件须引用评分题或数值题",
    "plan_days_order": "各时间点须在不同的天，并按天数从小到大排列",
}

#: pydantic's own checks that a plan definition can fail.
_PYDANTIC = {
    "missing": "必填",
    "string_too_short": "不能为空",
    "string_too_long": "最多 {max_length} 个字",
    "too_short": "至少需要 {min_length} 项",
    "too_long": "最多 {max_length} 项",
    "string_pattern_mismatch": "代码须以小写英文字母开头，只用小写英文字母、数字和下划线，最多 40 个字符",
    "greater_than_equal": "不能小于 {ge}",
    "less_than_equal": "不能大于 {le}",
    "int_parsing": "须是整数",
    "int_from_float": "须是整数",
    "int_type": "须是整数",
    "float_parsing": "须是数字",
    "float_type": "须是数字",
    "bool_parsing": "须是“是”或“否”",
    "bool_type": "须是“是”或“否”",
    "string_type": "须是文字",
    "list_type": "须是列表",
    "model_type": "格式不对",
    "dict_type": "格式不对",
    "model_attributes_type": "格式不对",
    "literal_error": "须是 {expected} 之一",
    "enum": "须是 {expected} 之一",
    "extra_forbidden": "多了一个计划里没有的字段",
}

#: How many problems one answer lists (a pasted plan can be wrong everywhere).
MAX_PROBLEMS = 50


class PlanProblem(BaseModel):
    #: Where, as in the definition: `["time_points", 0, "questionnaire", "questions", 1, "minimum"]`.
    loc: list[str | int]
    #: Why, in Chinese, for the clinician.
    msg: str
    #: The check's machine-readable name (`plan_min_max`, `string_too_short`, …).
    type: str


def _where(loc: tuple[str | int, ...], context: dict[str, Any]) -> list[str | int]:
    """The location made precise: plans.py's model checks name the model, their context the field."""
    where = list(loc)
    field, index = context.get("field"), context.get("index")
    if field == "time_points":
        return [*where, "time_points", index, "day"]
    if field in ("enable_when", "code") and index is not None:
        return [*where, "questions", index, field]
    if field == "flags":
        return [*where, "flags", index]
    if isinstance(field, str):
        return [*where, field]
    return where


def _chinese(kind: str, context: dict[str, Any], english: str) -> str:
    template = _PLAN.get(kind) or _PYDANTIC.get(kind)
    if template is None:
        return "格式不对：" + english
    try:
        return template.format(**context)
    except (KeyError, IndexError, ValueError):
        return template


def plan_problems(error: ValidationError) -> list[PlanProblem]:
    """Each problem of a refused definition, in Chinese, with its location."""
    problems = []
    for item in error.errors()[:MAX_PROBLEMS]:
        context = dict(item.get("ctx") or {})
        english = item["msg"].removeprefix("Value error, ")
        problems.append(
            PlanProblem(
                loc=_where(tuple(item["loc"]), context),
                msg=_chinese(item["type"], context, english),
                type=item["type"],
            )
        )
    return problems


def summary(problems: list[PlanProblem]) -> str:
    """One sentence for a toast or an API client's log: the first five problems and where."""
    parts = [
        problem.msg + "（" + ".".join(str(part) for part in problem.loc) + "）"
        if problem.loc
        else problem.msg
        for problem in problems[:5]
    ]
    more = f"；另有 {len(problems) - 5} 处" if len(problems) > 5 else ""
    return "计划未通过检查：" + "；".join(parts) + more
