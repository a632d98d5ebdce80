"""What a patient's reply means inside the complaint dialogues (bot/dialogs/complaints_reading.py):
table tests of the word lists, run without Rasa (the module imports nothing of rasa_sdk)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[2] / "bot" / "dialogs" / "complaints_reading.py"
_SPEC = importlib.util.spec_from_file_location("complaints_reading", _PATH)
assert _SPEC is not None and _SPEC.loader is not None
reading = importlib.util.module_from_spec(_SPEC)
sys.modules["complaints_reading"] = reading
_SPEC.loader.exec_module(reading)

PARTS = ["complaint_what", "complaint_when", "complaint_where", "complaint_who", "complaint_wish"]


@pytest.mark.parametrize(
    ("text", "story"),
    [
        ("我要投诉", False),
        ("我想投诉一下", False),
        ("我要投诉你们医院", False),
        ("投拆", False),
        ("我要表扬", False),
        ("我要投诉儿科的护士，态度太差了", True),
        ("在门诊排了三个小时队都没看上", True),
        ("我想表扬心内科的王医生，对我妈特别耐心", True),
    ],
)
def test_the_first_message_is_the_story_only_when_it_tells_one(text: str, story: bool) -> None:
    assert (reading.story_in(text) == text) is story


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("确认", "yes"),
        ("对的，没问题", "yes"),
        ("没错", "yes"),
        ("好", "yes"),
        ("改一下", "fix"),
        ("不对", "fix"),
        ("时间写错了", "fix"),
        ("嗯？", "yes"),
        ("我再想想", "unclear"),
    ],
)
def test_the_read_back_is_confirmed_or_corrected(text: str, expected: str) -> None:
    assert reading.read_confirmation(text) == expected


@pytest.mark.parametrize(
    ("text", "part"),
    [
        ("2", "complaint_when"),
        ("第5项", "complaint_wish"),
        ("改一下时间", "complaint_when"),
        ("科室不对", "complaint_where"),
        ("护士名字写错了", "complaint_who"),
        ("随便", None),
        ("7", None),
    ],
)
def test_the_part_to_correct_by_number_or_name(text: str, part: str | None) -> None:
    assert reading.part_named(text, PARTS) == part


def test_praise_offers_four_parts_so_five_is_no_part() -> None:
    assert reading.part_named("5", PARTS[:4]) is None


@pytest.mark.parametrize(
    ("text", "accepts"),
    [
        ("接受", True),
        ("可以，接受", True),
        ("满意", True),
        ("不接受", False),
        ("不太满意，不接受", False),
        ("不同意这个结果", False),
        ("我还要投诉", False),
        ("不", False),
        ("说不好", None),
        ("再看看吧", None),
    ],
)
def test_accepting_the_outcome_reads_a_negation_first(text: str, accepts: bool | None) -> None:
    assert reading.read_acceptance(text) is accepts


@pytest.mark.parametrize(
    ("text", "score"),
    [
        ("5", 5),
        ("5分", 5),
        ("四分", 4),
        ("三星", 3),
        ("非常满意", 5),
        ("满意", 4),
        ("一般吧", 3),
        ("不满意", 2),
        ("很不满意", 1),
        ("10", None),
        ("3到4分", None),
        ("说不好", None),
    ],
)
def test_satisfaction_is_a_score_from_one_to_five(text: str, score: int | None) -> None:
    assert reading.read_satisfaction(text) == score


@pytest.mark.parametrize(
    ("text", "person", "stop", "skip"),
    [
        ("转人工", True, False, False),
        ("我要人工客服", True, False, False),
        ("算了", False, True, False),
        ("算了，不投诉了", False, True, False),
        ("跳过", False, False, True),
        ("不清楚是谁", False, False, True),
        ("那个护士后来说算了不跟我们计较，可我们还是觉得委屈", False, False, False),
    ],
)
def test_leaving_and_skipping_are_short_messages(text: str, person: bool, stop: bool, skip: bool) -> None:
    assert reading.asks_for_person(text) is person
    assert reading.wants_to_stop(text) is stop
    assert reading.is_skip(text) is skip
