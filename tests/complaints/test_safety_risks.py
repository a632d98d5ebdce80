"""Which complaints are safety risks (crm_backend/complaints/safety_risks.yml): every risk has a
sentence that finds it, negations and ordinary grievances do not, and the file is well formed."""

from __future__ import annotations

import pytest

from crm_backend.complaints import safety

FOUND = {
    "medication_error": "护士给我爸发错药了，吃了才发现",
    "fall": "我妈在病房厕所里滑倒了，当时没人扶",
    "left_without_care": "老人住院按铃半天都没人来",
    "wrong_patient_or_procedure": "抽血的时候把我和别人的标本弄错了",
    "injury_in_care": "孩子输液的地方被热水袋烫伤了",
    "deterioration_not_acted_on": "我爸半夜发烧越来越高一直没人管",
}


@pytest.mark.parametrize(("risk", "text"), sorted(FOUND.items()))
def test_each_risk_is_found_in_patients_words(risk: str, text: str) -> None:
    assert risk in safety.assess(text).risks


def test_every_risk_in_the_file_has_a_sentence_here() -> None:
    assert {risk.id for risk in safety.risk_book().risks} == set(FOUND)


@pytest.mark.parametrize(
    "text",
    [
        "在门诊排队等了三个小时才看上",
        "医生态度不好，说话很冲",
        "收费处多收了一次检查费",
        "还好没有摔倒，就是地太滑了",
        "药没发错，是窗口排队太久",
    ],
)
def test_ordinary_grievances_and_negations_are_not_safety_risks(text: str) -> None:
    assert not safety.assess(text).safety_risk


def test_any_part_of_the_intake_counts_and_the_version_is_kept() -> None:
    found = safety.assess("希望改进服务", None, "护工把我奶奶从轮椅上摔下来了")
    assert found.risks == ("fall",) and found.version == safety.risk_book().version
