"""Chinese date phrases in booking sentences, read relative to fixed times in Asia/Shanghai."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from crm_backend.appointments.dates import WhenAsked, understand_half_day, understand_when, warm_up
from crm_backend.appointments.models import HalfDay

SHANGHAI = ZoneInfo("Asia/Shanghai")
#: A Monday morning in the hospital.
MONDAY = datetime(2026, 11, 30, 10, 0, tzinfo=SHANGHAI)
#: Still Sunday 29 November in UTC, already Monday 07:30 in Shanghai.
SUNDAY_NIGHT_UTC = datetime(2026, 11, 29, 23, 30, tzinfo=UTC)
SATURDAY = datetime(2026, 12, 5, 15, 0, tzinfo=SHANGHAI)
LATE_DECEMBER = datetime(2026, 12, 20, 9, 0, tzinfo=SHANGHAI)  # a Sunday
END_OF_JANUARY = datetime(2027, 1, 31, 9, 0, tzinfo=SHANGHAI)

AM, PM = HalfDay.AM, HalfDay.PM


def d(month: int, day: int, year: int = 2026) -> date:
    return date(year, month, day)


@pytest.fixture(scope="module", autouse=True)
def _library_loaded() -> None:
    warm_up()


def asked(text: str, now: datetime) -> tuple[date, date, HalfDay | None, str] | None:
    when = understand_when(text, now)
    assert when is None or isinstance(when, WhenAsked)
    return None if when is None else (when.date_from, when.date_to, when.half_day, when.phrase)


# (sentence, first day, last day, half-day, phrase understood); now is MONDAY 2026-11-30.
MONDAY_TABLE = [
    ("明天", d(12, 1), d(12, 1), None, "明天"),
    ("我想挂明天的眼科", d(12, 1), d(12, 1), None, "明天"),
    ("后天还有号吗", d(12, 2), d(12, 2), None, "后天"),
    ("大后天下午能看牙吗", d(12, 3), d(12, 3), PM, "大后天下午"),
    ("今天下午还能加号不", d(11, 30), d(11, 30), PM, "今天下午"),
    ("给我爸约下周三的心内科", d(12, 9), d(12, 9), None, "下周三"),
    ("这周五有没有专家号", d(12, 4), d(12, 4), None, "这周五"),
    ("本周五上午的骨科", d(12, 4), d(12, 4), AM, "本周五上午"),
    ("周五上午皮肤科有号吗", d(12, 4), d(12, 4), AM, "周五上午"),
    ("星期天开门吗", d(12, 6), d(12, 6), None, "星期天"),
    ("礼拜三的儿科", d(12, 2), d(12, 2), None, "礼拜三"),
    ("下礼拜二回来复查", d(12, 8), d(12, 8), None, "下礼拜二"),
    ("想约11月25号", d(11, 25), d(11, 25), None, "11月25号"),
    ("11月25日上午有医生吗", d(11, 25), d(11, 25), AM, "11月25日上午"),
    ("12月3号下午的耳鼻喉科", d(12, 3), d(12, 3), PM, "12月3号下午"),
    ("预约2026年12月1日", d(12, 1), d(12, 1), None, "2026年12月1日"),
    ("12.3那天可以", d(12, 3), d(12, 3), None, "12月3日"),
    ("约12.3号", d(12, 3), d(12, 3), None, "12月3日"),
    ("下个月3号帮我留一个", d(12, 3), d(12, 3), None, "下个月3号"),
    ("3号还有位置吗", d(12, 3), d(12, 3), None, "3号"),
    ("麻烦改到后天下午", d(12, 2), d(12, 2), PM, "后天下午"),
    ("有没有明天上午皮肤科的专家号", d(12, 1), d(12, 1), AM, "明天上午"),
    ("下周哪天都行", d(12, 7), d(12, 13), None, "下周"),
    ("这周末有门诊吗", d(12, 5), d(12, 6), None, "这周末"),
    ("下个月的号放出来没有", d(12, 1), d(12, 31), None, "下个月"),
    ("12月份的号", d(12, 1), d(12, 31), None, "12月份"),
    ("下周一到周三都可以", d(12, 7), d(12, 9), None, "下周一到周三"),
    ("明早能来", d(12, 1), d(12, 1), AM, "明天早上"),
    ("周5上午", d(12, 4), d(12, 4), AM, "周五上午"),
    ("１２月３号下午", d(12, 3), d(12, 3), PM, "12月3号下午"),
    ("明天晚上有没有门诊", d(12, 1), d(12, 1), None, "明天晚上"),
    ("明天下午或者后天上午", d(12, 1), d(12, 1), PM, "明天下午"),
    ("明天或者后天，上午", d(12, 1), d(12, 1), AM, "明天"),
    ("早上好，我想约后天的号", d(12, 2), d(12, 2), None, "后天"),
    ("后天上下午都行", d(12, 2), d(12, 2), None, "后天"),
    ("31号有没有号", d(12, 31), d(12, 31), None, "31号"),
    ("2026年12月1日上午9点到11点的号", d(12, 1), d(12, 1), AM, "2026年12月1日上午9点"),
    ("手机13800138000，约明天", d(12, 1), d(12, 1), None, "明天"),
]


@pytest.mark.parametrize(("text", "first", "last", "half_day", "phrase"), MONDAY_TABLE)
def test_phrases_in_sentences(
    text: str, first: date, last: date, half_day: HalfDay | None, phrase: str
) -> None:
    assert asked(text, MONDAY) == (first, last, half_day, phrase)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("今天还能挂吗", d(11, 30)),
        ("明天", d(12, 1)),
        ("下周三", d(12, 9)),
        ("这周五", d(12, 4)),
        ("周日", d(12, 6)),
        ("3号", d(12, 3)),
    ],
)
def test_the_day_is_shanghai_s_not_utc_s(text: str, expected: date) -> None:
    # In UTC it is still Sunday the 29th: "明天" would be the 30th and "下周三" the 2nd.
    when = understand_when(text, SUNDAY_NIGHT_UTC)
    assert when is not None
    assert (when.date_from, when.date_to) == (expected, expected)


def test_now_in_any_timezone_or_naive_utc_gives_the_same_answer() -> None:
    los_angeles = MONDAY.astimezone(ZoneInfo("America/Los_Angeles"))  # Sunday 18:00 there
    naive_utc = MONDAY.astimezone(UTC).replace(tzinfo=None)
    for text in ("明天上午", "下周三", "周五", "3号", "下个月"):
        expected = understand_when(text, MONDAY)
        assert expected is not None
        assert understand_when(text, los_angeles) == expected
        assert understand_when(text, naive_utc) == expected


@pytest.mark.parametrize(
    ("text", "first", "last"),
    [
        ("周五", d(12, 11), d(12, 11)),  # yesterday was Friday: the next one
        ("星期五下午", d(12, 11), d(12, 11)),
        ("这周五", d(12, 4), d(12, 4)),  # this week's, already past: the caller says so
        ("本周五", d(12, 4), d(12, 4)),
        ("周六上午", d(12, 5), d(12, 5)),  # today
        ("礼拜天", d(12, 6), d(12, 6)),
        ("下周三", d(12, 9), d(12, 9)),
        ("周末", d(12, 5), d(12, 6)),
        ("下周末", d(12, 12), d(12, 13)),
        ("3号", d(1, 3, 2027), d(1, 3, 2027)),
    ],
)
def test_weekdays_on_a_saturday(text: str, first: date, last: date) -> None:
    when = understand_when(text, SATURDAY)
    assert when is not None
    assert (when.date_from, when.date_to) == (first, last)


@pytest.mark.parametrize(
    ("now", "text", "first", "last"),
    [
        (LATE_DECEMBER, "1月5号", d(1, 5, 2027), d(1, 5, 2027)),  # next year's is the near one
        (LATE_DECEMBER, "1.5上午", d(1, 5, 2027), d(1, 5, 2027)),
        (LATE_DECEMBER, "12月3号", d(12, 3), d(12, 3)),  # passed this year: kept, the caller says so
        (LATE_DECEMBER, "3号", d(1, 3, 2027), d(1, 3, 2027)),
        (LATE_DECEMBER, "下个月", d(1, 1, 2027), d(1, 31, 2027)),
        (LATE_DECEMBER, "下下个月", d(2, 1, 2027), d(2, 28, 2027)),
        (LATE_DECEMBER, "1月份", d(1, 1, 2027), d(1, 31, 2027)),
        (LATE_DECEMBER, "2027年1月5日", d(1, 5, 2027), d(1, 5, 2027)),
        (END_OF_JANUARY, "30号", d(3, 30, 2027), d(3, 30, 2027)),  # February has none
        (END_OF_JANUARY, "31号", d(1, 31, 2027), d(1, 31, 2027)),  # today
        (END_OF_JANUARY, "下个月", d(2, 1, 2027), d(2, 28, 2027)),
        (MONDAY, "30号", d(11, 30), d(11, 30)),
    ],
)
def test_year_and_month_boundaries(now: datetime, text: str, first: date, last: date) -> None:
    when = understand_when(text, now)
    assert when is not None
    assert (when.date_from, when.date_to) == (first, last)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("上午", AM),
        ("下午的", PM),
        ("早上那个", AM),
        ("早晨吧", AM),
        ("上半天", AM),
        ("中午前能看完吗", AM),
        ("明早", AM),
        ("下半天", PM),
        ("中午以后", PM),
        ("午后", PM),
        ("傍晚", PM),
        ("要下午三点的", PM),
        ("晚上", None),  # no evening session: not guessed
        ("中午", None),
        ("上午下午都行", None),
        ("上下午都可以", None),
        ("早上好", None),  # a greeting
        ("下午好，医生", None),
        ("早点来", None),
        ("你好", None),
        ("", None),
    ],
)
def test_half_day(text: str, expected: HalfDay | None) -> None:
    assert understand_half_day(text) is expected


@pytest.mark.parametrize(
    "text",
    [
        "你好",
        "心内科",
        "我要挂号",
        "挂个专家号",
        "13800138000",
        "我的手机是13800138000",
        "110101199003071234",
        "身份证号110101199003071234",
        "3号诊室在哪",
        "去2号楼几层",
        "我住8号床",
        "坐地铁2号线",
        "血糖7.8",
        "体温37.5度",
        "吃了1.5片",
        "版本v1.2",
        "我今年60岁",
        "孩子3个月大",
        "下午",  # a half-day alone names no day
        "上午9点",
        "过两天再说",
        "每周五都来透析",
        "",
        "   ",
    ],
)
def test_no_date(text: str) -> None:
    assert understand_when(text, MONDAY) is None


HOSTILE = [
    "3号" * 5000,
    "下" * 10000,
    "周" * 10000,
    "12.3." * 2000,
    "2026年" * 2000,
    "11月" * 3000,
    "十号" * 5000,
    "1" * 10000,
    "😀" * 10000,
    "\x00明天\x00",
    "明天\ud800",
    "\u202e明天\u202d",
    "ﬀ" * 5000,
    " " * 10000,
    "'; DROP TABLE appointments; --",
    "{{7*7}}${jndi:ldap://x}",
    "<script>alert(1)</script>",
    "明天" + "啊" * 10000,
]


@pytest.mark.parametrize("text", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_text_never_raises(text: str) -> None:
    """How long the worst of these takes is measured by bench/date_understanding.py."""
    when = understand_when(text, MONDAY)
    half_day = understand_half_day(text)
    assert when is None or isinstance(when, WhenAsked)
    assert half_day is None or isinstance(half_day, HalfDay)


def test_hostile_text_still_gives_the_first_date() -> None:
    when = understand_when("帮我约明天的心内科，" * 1000, MONDAY)
    assert when is not None and when.date_from == d(12, 1)
    assert understand_when("\x00明天\x00", MONDAY) is not None


@pytest.mark.parametrize("now", [None, "2026-11-30", 0])
def test_a_bad_now_gives_none(now: object) -> None:
    assert understand_when("明天", now) is None  # type: ignore[arg-type]


def test_a_bad_text_gives_none() -> None:
    assert understand_when(None, MONDAY) is None  # type: ignore[arg-type]
    assert understand_half_day(None) is None  # type: ignore[arg-type]


def test_threads_get_their_own_answers() -> None:
    jobs = [
        ("明天", MONDAY, d(12, 1)),
        ("明天", SATURDAY, d(12, 6)),
        ("下周三", LATE_DECEMBER, d(12, 23)),
    ] * 30
    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(lambda job: understand_when(job[0], job[1]), jobs))
    assert [r.date_from if r else None for r in results] == [expected for *_, expected in jobs]


def test_the_library_is_imported_on_first_use_only() -> None:
    code = "import sys, crm_backend.appointments.dates; print('jionlp' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
