"""The department recommender on clear cases: what a patient would notice in its answer.

These phrases are not from the evaluation set (bench/triage_eval/departments.yml).
"""

from __future__ import annotations

import pytest

from crm_backend.appointments.demo_data import DEPARTMENTS
from crm_backend.triage.catalogue import (
    BadTerm,
    DepartmentProfile,
    SymptomTerm,
    compile_term,
    load_triage_data,
)
from crm_backend.triage.departments import NOT_A_DIAGNOSIS, Level, recommend
from crm_backend.triage.service import assess


def codes(text: str, **known: object) -> list[str]:
    return [d.code for d in recommend(text, **known).departments]  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "first"),
    [
        ("肚子疼还拉肚子", "GAST"),
        ("牙疼了三天", "STOM"),
        ("耳朵里一直嗡嗡响", "ENT"),
        ("膝盖扭了一下现在肿了", "ORTH"),
        ("身上起红疹子特别痒", "DERM"),
        ("看东西模糊，眼睛干", "OPH"),
        ("血糖有点高想复查", "ENDO"),
        ("痔疮出血", "PROC"),
        ("尿频尿急还尿痛", "URO"),
        ("心慌，心跳得很快", "CARD"),
        ("我想挂皮肤科", "DERM"),
    ],
)
def test_clear_cases_name_the_department_first(text: str, first: str):
    assert codes(text)[0] == first


def test_the_reason_is_one_line_in_the_patients_words_and_says_it_is_no_diagnosis():
    result = recommend("肚子疼还拉肚子")
    assert result.reason == "肚子疼伴拉肚子，建议看消化内科（肠胃科）"
    assert "\n" not in result.reason
    assert result.patient_text().startswith(result.reason) and NOT_A_DIAGNOSIS in result.patient_text()
    assert result.version == load_triage_data().version


def test_a_child_goes_to_paediatrics_by_age_from_the_words_or_from_the_dialogue():
    assert codes("发烧咳嗽三天了")[0] == "RESP"
    child = recommend("孩子发烧咳嗽三天了")
    assert child.departments[0].code == "PED" and child.age_years is not None and child.age_years < 14
    assert "儿科" in child.reason
    assert codes("宝宝8个月，拉肚子")[0] == "PED"
    assert codes("咳嗽有痰", age_years=5)[0] == "PED"
    # What the dialogue knows about the 就诊人 wins over the words.
    assert codes("儿子咳嗽有痰", age_years=25)[0] == "RESP"


def test_a_child_still_goes_to_a_department_that_sees_children():
    assert codes("孩子牙疼")[0] == "STOM"
    assert codes("女儿看黑板看不清，可能近视了")[0] == "OPH"


def test_pregnancy_puts_obstetrics_first_and_a_denied_pregnancy_does_not():
    pregnant = recommend("怀孕6个月了，牙龈出血")
    assert [d.code for d in pregnant.departments][:2] == ["OBS", "STOM"]
    assert "产科" in pregnant.reason and "牙龈出血" in pregnant.reason
    assert not pregnant.close
    assert codes("最近腰酸", pregnant=True)[0] == "OBS"
    assert codes("没怀孕，月经推迟了两周")[0] == "GYN"


def test_sex_specific_departments_follow_who_is_asked_about():
    assert codes("结婚三年一直怀不上", sex="female")[0] == "GYN"
    assert codes("结婚三年一直怀不上", sex="male")[0] == "ANDR"
    assert codes("我老公睾丸坠痛")[0] == "ANDR"
    assert "GYN" not in codes("下面痒，小便疼", sex="male")


def test_close_departments_ask_one_clarifying_question():
    result = recommend("右下腹疼还拉肚子")
    assert [d.code for d in result.departments][:2] == ["GSUR", "GAST"]
    assert result.close
    assert result.question == load_triage_data().question_between("GAST", "GSUR")
    assert result.question and result.question.endswith("消化内科。")
    clear = recommend("肚子疼还拉肚子")
    assert not clear.close and clear.question is None


def test_a_pair_without_a_written_question_gets_one_from_both_descriptions():
    departments = [
        DepartmentProfile("A", "甲科", "看甲的问题", terms=(SymptomTerm("头晕", 2),)),
        DepartmentProfile("B", "乙科", "看乙的问题", terms=(SymptomTerm("乏力", 2),)),
    ]
    result = recommend("头晕乏力", departments=departments)
    assert result.close and result.question
    assert "甲科" in result.question and "乙科" in result.question and "看乙的问题" in result.question


def test_negated_words_do_not_count():
    assert codes("不是牙疼，是眼睛疼")[0] == "OPH"
    assert "发烧" not in recommend("没有发烧，就是咳嗽").reason


def test_levels_self_care_routine_and_urgent():
    cold = recommend("感冒了流鼻涕")
    assert cold.level is Level.SELF_CARE and cold.advice and "就医" in cold.advice
    assert recommend("咳嗽一个多月了").level is Level.ROUTINE  # going on for long: never self care
    assert recommend("孩子感冒流鼻涕").level is Level.ROUTINE  # children: never self care
    urgent = recommend("突然肚子剧烈疼痛")
    assert urgent.level is Level.URGENT and urgent.advice and "120" in urgent.advice
    assert not urgent.close  # to the emergency department without a question first


def test_words_that_name_nothing_known_ask_for_more():
    result = recommend("你好")
    assert not result.understood and [d.code for d in result.departments] == ["GIM"]
    assert recommend("你好", age_years=3).departments[0].code == "PED"


def test_the_departments_given_are_what_counts():
    """Staff-edited departments (from the database) replace the file's."""
    edited = [
        DepartmentProfile("SLEEP", "睡眠门诊", "睡不好", terms=(SymptomTerm("失眠/睡不着", 3),)),
        DepartmentProfile("GIM", "普通内科", "说不清的不舒服"),
    ]
    assert codes("最近老是睡不着", departments=edited) == ["SLEEP"]


def test_a_term_that_cannot_be_read_is_refused():
    with pytest.raises(BadTerm):
        compile_term("肚子…")
    with pytest.raises(BadTerm):
        compile_term("咳嗽//")
    assert compile_term("腹痛/肚子…疼").search("肚子有点疼")


def test_the_data_file_covers_every_demo_department():
    data = load_triage_data()
    profiles = {p.code: p for p in data.departments}
    assert [code for code, *_ in DEPARTMENTS] == list(profiles)
    for code, _official, patient_name, _aliases in DEPARTMENTS:
        assert profiles[code].name == patient_name
        assert profiles[code].description and len(profiles[code].terms) >= 5, code


def test_an_urgent_word_is_answered_at_once_even_when_no_department_term_matched() -> None:
    """ "Say more" would leave a patient with days of high fever waiting; go today is said at once."""
    answer = assess("突然特别难受，越来越厉害").answer
    assert answer.level == "urgent"
    assert "今天" in answer.answer and "不是诊断" in answer.answer
    assert (
        assess("你们那边天气怎么样").answer.answer == ""
    )  # nothing urgent, nothing understood: ask for more
