"""One reading of a check-in's answers for chat, page and phone: allowed values, conditions, flags."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from crm_backend.followups import scoring
from crm_backend.followups.plans import Flag, PlanDefinition, Questionnaire

QUESTIONNAIRE = Questionnaire.model_validate(
    {
        "questions": [
            {
                "code": "pain",
                "text": "伤口疼痛有几分？",
                "type": "scale",
                "flags": [
                    {"flag": "amber", "at_least": 4},
                    {"flag": "red", "at_least": 7, "advice": "请按医嘱服用止痛药，并尽快联系护士。"},
                ],
            },
            {
                "code": "temperature",
                "text": "今天最高体温多少度？",
                "type": "number",
                "unit": "°C",
                "minimum": 35,
                "maximum": 42,
                "flags": [
                    {"flag": "amber", "at_least": 37.5},
                    {"flag": "red", "at_least": 38.5, "advice": "请尽快到医院复查。"},
                ],
            },
            {
                "code": "wound_red",
                "text": "伤口有没有发红或肿胀？",
                "type": "yes_no",
                "flags": [{"flag": "amber", "equals": True}],
            },
            {
                "code": "wound_discharge",
                "text": "伤口有没有渗液？",
                "type": "single_choice",
                "enable_when": {"question": "wound_red", "equals": True},
                "choices": [
                    {"code": "none", "text": "没有"},
                    {"code": "clear", "text": "少量清亮液体"},
                    {"code": "pus", "text": "脓液或有异味"},
                ],
                "flags": [
                    {"flag": "red", "any_of": ["pus"], "advice": "伤口可能感染，请今天到医院换药检查。"}
                ],
            },
            {
                "code": "symptoms",
                "text": "有没有以下情况？",
                "type": "multiple_choice",
                "choices": [
                    {"code": "nausea", "text": "恶心"},
                    {"code": "vomiting", "text": "呕吐"},
                    {"code": "calf", "text": "小腿肿痛"},
                ],
                "flags": [
                    {"flag": "amber", "any_of": ["nausea", "vomiting"]},
                    {"flag": "emergency", "any_of": ["calf"], "advice": "请立即到急诊科就诊。"},
                ],
            },
            {"code": "other", "text": "还有什么不舒服吗？", "type": "free_text"},
        ]
    }
)


def question(code: str):
    return QUESTIONNAIRE.question(code)


@pytest.mark.parametrize(
    ("code", "value", "stored"),
    [
        ("pain", 0, 0),
        ("pain", 10, 10),
        ("pain", 5.0, 5),
        ("temperature", 38.2, 38.2),
        ("temperature", 37, 37.0),
        ("wound_red", False, False),
        ("wound_discharge", "clear", "clear"),
        ("symptoms", ["vomiting", "nausea", "nausea"], ["nausea", "vomiting"]),
        ("symptoms", [], []),
        ("other", "  还好  ", "还好"),
    ],
)
def test_allowed_values_are_stored_in_one_form(code, value, stored):
    assert scoring.check_value(question(code), value) == stored


@pytest.mark.parametrize(
    ("code", "value"),
    [
        ("pain", 11),
        ("pain", -1),
        ("pain", 4.5),
        ("pain", True),
        ("pain", "5"),
        ("temperature", 34.9),
        ("temperature", 42.1),
        ("wound_red", "yes"),
        ("wound_red", 1),
        ("wound_discharge", "blood"),
        ("symptoms", "nausea"),
        ("symptoms", ["fever"]),
        ("other", "   "),
    ],
)
def test_values_outside_what_the_question_allows_are_refused(code, value):
    with pytest.raises(scoring.AnswerRefused):
        scoring.check_value(question(code), value)


@pytest.mark.parametrize(
    ("code", "value", "flag"),
    [
        ("pain", 3, Flag.green),
        ("pain", 4, Flag.amber),
        ("pain", 6, Flag.amber),
        ("pain", 7, Flag.red),
        ("temperature", 37.4, Flag.green),
        ("temperature", 37.5, Flag.amber),
        ("temperature", 38.5, Flag.red),
        ("wound_red", True, Flag.amber),
        ("wound_discharge", "pus", Flag.red),
        ("symptoms", ["nausea"], Flag.amber),
        ("symptoms", ["nausea", "calf"], Flag.emergency),
        ("symptoms", [], Flag.green),
    ],
)
def test_each_answer_raises_the_worst_flag_it_matches(code, value, flag):
    assert scoring.assess_answer(question(code), value).flag == flag


def test_free_text_is_read_by_the_red_flag_screen():
    calm = scoring.assess_answer(question("other"), "没有不舒服，就是有点累")
    assert calm.flag == Flag.green
    alarming = scoring.assess_answer(question("other"), "今天突然喘不上气，胸口很闷")
    assert alarming.flag == Flag.emergency
    assert alarming.red_flags
    assert "120" in alarming.advice


@pytest.mark.parametrize(
    ("text", "flag"),
    [
        # Triage sends these to a doctor today: red, with what to do now.
        ("之前疼得睡不着，现在好多了", Flag.red),
        ("吐得厉害", Flag.red),
        # A red-flag symptom that has passed: a nurse calls within 24 hours.
        ("上个月胸痛过一次", Flag.amber),
        ("没有胸痛", Flag.green),
        ("如果胸痛怎么办", Flag.green),
    ],
)
def test_free_text_that_is_worrying_but_no_emergency_is_never_green(text, flag):
    finding = scoring.assess_answer(question("other"), text)
    assert finding.flag == flag
    if flag == Flag.red:
        assert "今天" in finding.advice


def test_a_conditional_question_is_asked_only_when_its_condition_is_met():
    answers = {"pain": 2, "temperature": 36.8, "wound_red": False}
    assert scoring.next_question(QUESTIONNAIRE, answers).code == "symptoms"
    answers["wound_red"] = True
    assert scoring.next_question(QUESTIONNAIRE, answers).code == "wound_discharge"


def test_an_answer_whose_condition_a_correction_undid_no_longer_counts():
    answers = {"pain": 1, "wound_red": True, "wound_discharge": "pus"}
    assert scoring.assess(QUESTIONNAIRE, answers).flag == Flag.red
    answers["wound_red"] = False
    assessment = scoring.assess(QUESTIONNAIRE, answers)
    assert "wound_discharge" not in scoring.relevant_answers(QUESTIONNAIRE, answers)
    assert assessment.flag == Flag.green


def test_the_assessment_gives_the_worst_flag_and_urgent_advice_first():
    answers = {"pain": 8, "temperature": 38.6, "symptoms": ["calf"]}
    assessment = scoring.assess(QUESTIONNAIRE, answers)
    assert assessment.flag == Flag.emergency
    assert assessment.advice[0] == "请立即到急诊科就诊。"
    assert "请尽快到医院复查。" in assessment.advice
    assert scoring.next_question(QUESTIONNAIRE, {**answers, "wound_red": False, "other": "无"}) is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"type": "number"}, "minimum and maximum"),
        ({"type": "scale", "minimum": 1, "maximum": 5}, "0–10"),
        ({"flags": [{"flag": "red", "equals": True}]}, "yes/no"),
        ({"flags": [{"flag": "red", "at_least": 3, "equals": True}]}, "exactly one"),
        ({"enable_when": {"question": "later", "equals": True}}, "earlier question"),
        ({"code": "Bad Code"}, "pattern"),
    ],
)
def test_a_plan_that_does_not_hold_together_is_refused_with_the_reason(change, message):
    first = {"code": "pain", "text": "疼痛几分？", "type": "scale"}
    plan = {
        "code": "demo",
        "name": "演示",
        "procedures": [{"text": "演示手术"}],
        "time_points": [{"day": 1, "questionnaire": {"questions": [{**first, **change}]}}],
    }
    with pytest.raises(ValidationError, match=message):
        PlanDefinition.model_validate(plan)


def test_time_points_must_be_on_distinct_days_in_order():
    point = {"questionnaire": {"questions": [{"code": "pain", "text": "疼痛几分？", "type": "scale"}]}}
    plan = {
        "code": "demo",
        "name": "演示",
        "procedures": [{"text": "演示手术"}],
        "time_points": [{**point, "day": 3}, {**point, "day": 1}],
    }
    with pytest.raises(ValidationError, match="distinct days"):
        PlanDefinition.model_validate(plan)
