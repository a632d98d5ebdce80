"""The call form names each conditional question's condition in words the server computes, so the
console holds no rule: yes/no, a number's threshold and choices, with the question's first sentence."""

from __future__ import annotations

from crm_backend.followups.plans import Questionnaire
from crm_backend.followups.worklists import condition_text

QUESTIONNAIRE = Questionnaire.model_validate(
    {
        "questions": [
            {"code": "fever", "text": "有没有发烧？", "type": "yes_no"},
            {
                "code": "cold",
                "text": "有没有发冷？",
                "type": "yes_no",
                "enable_when": {"question": "fever", "equals": False},
            },
            {
                "code": "pain",
                "text": "疼痛打几分？请回复数字。",
                "type": "scale",
            },
            {
                "code": "painkiller",
                "text": "吃止痛药了吗？",
                "type": "yes_no",
                "enable_when": {"question": "pain", "at_least": 4},
            },
            {
                "code": "wound",
                "text": "伤口有下面哪些情况？可以多选；都没有请回复“没有”。",
                "type": "multiple_choice",
                "choices": [
                    {"code": "red", "text": "发红"},
                    {"code": "swollen", "text": "肿"},
                    {"code": "dry", "text": "干燥"},
                ],
            },
            {
                "code": "discharge",
                "text": "伤口有没有流液？",
                "type": "yes_no",
                "enable_when": {"question": "wound", "any_of": ["red", "swollen"]},
            },
        ]
    }
)


def test_conditions_read_as_the_nurse_asks_them() -> None:
    texts = {q.code: condition_text(QUESTIONNAIRE, q.enable_when) for q in QUESTIONNAIRE.questions}
    assert texts["fever"] == ""
    assert texts["cold"] == "仅当「有没有发烧」答“否”时询问"
    assert texts["painkiller"] == "仅当「疼痛打几分」答不低于 4分时询问"
    assert texts["discharge"] == "仅当「伤口有下面哪些情况」答含“发红”、“肿”之一时询问"
