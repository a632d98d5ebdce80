"""Who a triage question is about, from the patient's words."""

from __future__ import annotations

import pytest

from crm_backend.triage.catalogue import Sex
from crm_backend.triage.subject import read_subject
from crm_backend.triage.who_is_ill import people_in


@pytest.mark.parametrize(
    ("text", "child", "sex", "pregnant"),
    [
        ("我家孩子三岁，发烧了", True, None, False),
        ("女儿最近老咳嗽", True, Sex.FEMALE, False),
        ("宝宝10个月大吐奶", True, None, False),
        ("儿子上初中了，老是头疼", True, Sex.MALE, False),
        ("我爸最近腰疼", False, Sex.MALE, False),
        ("我妈七十了，膝盖疼", False, Sex.FEMALE, False),
        ("结婚两年没孩子，老公想查一下", False, Sex.MALE, False),  # "没孩子" is not a child patient
        ("怀孕三个月了，老是吐", False, Sex.FEMALE, True),  # three months of pregnancy, not a baby
        ("我老婆怀孕了想建档", False, Sex.FEMALE, True),
        ("没怀孕，月经推迟了", False, None, False),
        ("是不是怀孕了，月经没来", False, Sex.FEMALE, True),
        ("我今年25岁，头疼", False, None, False),
    ],
)
def test_who_is_ill(text: str, child: bool, sex: Sex | None, pregnant: bool):
    subject = read_subject(text)
    assert subject.is_child is child
    assert subject.sex is sex
    assert subject.pregnant is pregnant


def test_what_the_dialogue_knows_wins():
    assert read_subject("孩子咳嗽", age_years=30).is_child is False
    assert read_subject("头疼", sex="male", pregnant=True).pregnant is False
    assert read_subject("腰酸", pregnant=True).sex is Sex.FEMALE


@pytest.mark.parametrize(
    "text", ["宝宝40天了，一直吐奶", "孩子一岁半，拉肚子", "我爸65岁，胸口闷", "新生儿黄疸", "孩子8个月发烧"]
)
def test_departments_and_the_red_flag_screen_read_the_same_age(text: str):
    """One reading of who is ill: the age departments use is the one the screen found (who_is_ill)."""
    [named] = [p for p in people_in(text) if p.age_months is not None]
    assert read_subject(text).age_years == named.age_months // 12


def test_a_baby_s_age_in_days_is_read_not_guessed():
    assert read_subject("宝宝40天了，一直吐奶").age_years == 0  # not "a child of unknown age" (6)
