"""A refused plan is explained in Chinese at the field it names: every check in plans.py has its
Chinese sentence, and the plans the model tests refuse come back in Chinese, not English."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from crm_backend.followups import plans
from crm_backend.followups.plan_problems import _PLAN, plan_problems
from crm_backend.followups.plans import PlanDefinition
from tests.followups.test_plans import BAD_PLANS, small_plan

CJK = re.compile(r"[\u4e00-\u9fff]")


def test_every_check_in_plans_py_has_a_chinese_sentence() -> None:
    source = Path(plans.__file__).read_text(encoding="utf-8")
    kinds = {"plan_" + kind for kind in re.findall(r'_problem\(\s*"([a-z_]+)"', source)}
    assert len(kinds) >= 15
    assert kinds == set(_PLAN)


@pytest.mark.parametrize("make", [m for _, m, _ in BAD_PLANS], ids=[n for n, _, _ in BAD_PLANS])
def test_a_refused_plan_is_explained_in_chinese(make: Callable[[], dict[str, Any]]) -> None:
    with pytest.raises(ValidationError) as caught:
        PlanDefinition.model_validate(make())
    problems = plan_problems(caught.value)
    assert problems
    for problem in problems:
        assert CJK.search(problem.msg), problem
        assert not problem.msg.startswith("格式不对："), problem


def test_a_problem_names_the_field_to_fix() -> None:
    body = small_plan("hernia")
    questions = body["time_points"][0]["questionnaire"]["questions"]
    questions[0]["flags"].append({"flag": "red", "equals": True})
    questions.append({"code": "temp", "text": "体温？", "type": "number", "minimum": 42, "maximum": 35})
    questions.append({"code": "Temp 2", "text": "", "type": "yes_no"})
    with pytest.raises(ValidationError) as caught:
        PlanDefinition.model_validate(body)
    found = {(tuple(p.loc), p.msg) for p in plan_problems(caught.value)}
    where = ("time_points", 0, "questionnaire", "questions")
    assert found == {
        ((*where, 0, "flags", 1), "“是 / 否”规则只能用于是否题"),
        ((*where, 2, "minimum"), "最小值必须小于最大值"),
        ((*where, 3, "code"), "代码须以小写英文字母开头，只用小写英文字母、数字和下划线，最多 40 个字符"),
        ((*where, 3, "text"), "不能为空"),
    }
