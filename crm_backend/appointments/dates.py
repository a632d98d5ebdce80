"""Dates and half-days in patients' Chinese words (明天, 下周三, 11月25号, 周五上午), in hospital time.

The parsing is JioNLP's (`jionlp`, Apache-2.0): compared with dateparser, Duckling
(pyduckling-native-phihos) and ChineseTimeNLP on booking sentences, it alone read 下周三/下礼拜二 as a
day of next week, kept 周五上午 whole and left phone and ID numbers alone. Importing it costs 0.4-0.8 s
and ~40 MB (its very first import also unzips its dictionaries inside site-packages; it never uses the
network), so it is imported on first use (or `warm_up`). What we add around it, each for a reason:

* Limits: the text is cut to 512 characters and the library searched in windows of 16 characters, at
  most 4 times per call. Its search is quadratic in a run of date-like characters with a costly failed
  parse per try, so hostile text ("3号" x 5000) would otherwise take minutes.
* Normalising a few forms it misses (12.3, 周5, 明早) before it sees the text.
* Booking semantics: a bare weekday is the next one on or after today, a bare "3号" the next 3rd, a
  weekend is Saturday and Sunday, a month ("下个月", "12月份") is the whole month.
* Filters: no date from a time of day alone ("下午"), a year ("我今年60岁"), a room ("3号诊室").

Half-days: outpatient sessions are only morning and afternoon. 上午/早上/早晨/上半天/中午前 mean AM;
下午/下半天/午后/中午后/傍晚 mean PM. 晚上 (evening) and a bare 中午 give None: there is no session then,
and guessing PM would book a time the patient did not ask for; the dialogue asks or offers both.
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
import threading
import unicodedata
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from crm_backend.appointments.models import HalfDay
from crm_backend.config import HOSPITAL_TZ

log = logging.getLogger(__name__)


_TEXT_LIMIT = 512
#: Longest date phrase we expect, e.g. "2026年12月1日上午9点" (14) or "二〇二六年十二月一日下午" (12).
_WINDOW = 16
_SEARCH_BUDGET = 4
#: A longer span ("今年", "明年") is no date to book on.
_MAX_SPAN_DAYS = 31
#: Next year's date wins over this year's once it is the nearer one (see `_nearest_year`).
_HALF_YEAR = timedelta(days=182)

_CN_NUM = "零〇一二两三四五六七八九十"
_NUM_CHAR = re.compile(rf"[0-9{_CN_NUM}百千万]")
#: More digits in a row than any date has (20261201): a phone, ID or order number.
_LONG_NUMBER = re.compile(r"[0-9]{9,}")

# --- normalising what the library misses -------------------------------------------------------------
_DIGIT_WEEKDAY = re.compile(r"(周|星期|礼拜)([1-7])(?![0-9])")
_WEEKDAY_CN = {"1": "一", "2": "二", "3": "三", "4": "四", "5": "五", "6": "六", "7": "日"}
_MORNING_SHORT = re.compile(r"([今明])(?:早上|早晨|早)(?![点些饭餐])")
#: "12.3" / "12.3号": month.day, not a decimal (no digit or dot around it, no unit after it).
_DOTTED = re.compile(
    r"(?<![0-9.])(1[0-2]|0?[1-9])\.(3[01]|[12][0-9]|0?[1-9])(?![0-9.])[号日]?"
    r"(?!\s*(?:[天元块斤克度岁米个次分秒%％万亿倍]|公斤|小时|kg|mg|ml|mm|cm))",
    re.IGNORECASE,
)
#: Words after which a dotted number is a date; after any other Chinese character ("血糖7.8") it is not.
_DOTTED_AFTER = set("约挂到在是改订选要想定的于和或至号天")

# --- reading what the library found --------------------------------------------------------------------
_TIME_ONLY = re.compile(
    rf"(?:上午|下午|中午|早上|早晨|清晨|清早|一早|凌晨|傍晚|晚上|晚间|夜里|夜间|午后|午前|上半天|下半天"
    rf"|[0-9{_CN_NUM}]{{1,3}}(?:点|时|:)(?:[0-9{_CN_NUM}]{{1,2}}分?|半|钟|整)?|[的之以前后到至~—-])+"
)
_BARE_WEEKDAY = re.compile(r"(?:周|星期|礼拜)[一二三四五六日天]")
_SMALL_NUMBER = rf"(?:[0-9]{{1,2}}|[{_CN_NUM}]{{1,3}})"
_BARE_DAY = re.compile(rf"{_SMALL_NUMBER}[号日]")
_MONTH_DAY = re.compile(rf"{_SMALL_NUMBER}(?:月|[./-]){_SMALL_NUMBER}")
#: "3号诊室", "2号楼", "5号窗口", "8号床", "2号线": a place or a queue number, not the 3rd.
_PLACE_AFTER_NUMBER = set("楼室床门窗口线台位机房区栋层诊病车")
_BARE_DAY_IN_TEXT = re.compile(r"(?<![0-9月./-])([12][0-9]|3[01]|0?[1-9])[号日](?![0-9])")

# --- months, which the library does not read alone ------------------------------------------------------
_RELATIVE_MONTH = re.compile(r"(下下个?|下个?|这个?|本|当)月(?!初|底|中|末|[上中下]旬)")
_MONTH_OFFSETS = {"下下": 2, "下": 1, "这": 0, "本": 0, "当": 0}
_NAMED_MONTH = re.compile(
    r"(?<![0-9年.])(1[0-2]|0?[1-9]|十[一二]?|[一二三四五六七八九])月(份|(?=$|[\s,，。.!！?？的有还能可吧吗呢]))"
)
_CN_MONTHS = {n: i for i, n in enumerate("一二三四五六七八九", start=1)} | {"十": 10, "十一": 11, "十二": 12}

# --- half-days ------------------------------------------------------------------------------------------
_GREETING = re.compile(r"(?:早上|早晨|上午|中午|下午|晚上)好")
_AM_WORDS = re.compile(
    r"上午|早上|早晨|清晨|清早|一早|早间|上半天|午前|中午(?:之|以)前|[今明后]早(?![点些饭餐])"
)
_PM_WORDS = re.compile(r"下午|下半天|午后|中午(?:之|以)后|傍晚")


@dataclass(frozen=True, slots=True)
class WhenAsked:
    """The day(s) a patient asked for; `half_day` is None when they named no session."""

    date_from: date
    date_to: date
    half_day: HalfDay | None
    phrase: str


def understand_half_day(text: str) -> HalfDay | None:
    """The session named in `text` ("上午", "下午的"), or None if none or both are named."""
    try:
        text = _GREETING.sub("", unicodedata.normalize("NFKC", text[:_TEXT_LIMIT]))
        if "上下午" in text:
            return None
        am, pm = bool(_AM_WORDS.search(text)), bool(_PM_WORDS.search(text))
        if am != pm:
            return HalfDay.AM if am else HalfDay.PM
    except Exception as exc:  # patients' text must never break the dialogue
        log.warning("understand_half_day failed: %s", type(exc).__name__)
    return None


def understand_when(text: str, now: datetime) -> WhenAsked | None:
    """The first date in `text`, relative to `now` in hospital time; None if it names no date.

    A naive `now` is taken as UTC, as the project stores times.
    """
    try:
        if now.tzinfo is None:
            now = now.replace(tzinfo=UTC)
        local_now = now.astimezone(HOSPITAL_TZ)
        text = _normalise(text[:_TEXT_LIMIT])
        base = datetime(*local_now.timetuple()[:6])  # the library wants exactly a naive datetime
        for phrase, result, end in _search(text, base):
            days = _accepted_days(phrase, result, text, end, local_now.date())
            if days is not None:
                half_day = understand_half_day(phrase) or understand_half_day(text)
                return WhenAsked(days[0], days[1], half_day, phrase.replace("的", ""))
        return _fallback(text, local_now.date())
    except Exception as exc:  # patients' text must never break the dialogue
        log.warning("understand_when failed: %s", type(exc).__name__)
        return None


def warm_up() -> None:
    """Import the library and compile its patterns now (~1 s) rather than on a patient's first message."""
    _search("明天", datetime(2026, 1, 1))


# --- the library ------------------------------------------------------------------------------------------

_load_lock = threading.Lock()
#: The library's parser keeps per-call state on itself, so calls from threads take turns.
_parse_lock = threading.Lock()
_extractor: Any = None


def _load() -> Any:
    global _extractor
    with _load_lock:
        if _extractor is None:
            # jionlp and jiojio print a banner on import; keep it out of our logs (stdout is process-wide,
            # so for that second other threads' prints are dropped too; nothing of ours prints).
            with contextlib.redirect_stdout(io.StringIO()):
                from jionlp.algorithm.ner.time_extractor import TimeExtractor

            extractor = TimeExtractor()
            extractor("", time_base=datetime(2026, 1, 1))  # compiles its patterns
            _extractor = extractor
    return _extractor


def _search(text: str, base: datetime) -> list[tuple[str, dict[str, Any], int]]:
    """Date phrases the library finds, in order, as (phrase, parse result, end offset in `text`).

    This is `jio.ner.extract_time` with bounded work: its candidate runs are searched in short windows,
    a fixed number of times, and long digit runs are skipped (phone and ID numbers are never dates).
    """
    extractor = _load()
    found: list[tuple[str, dict[str, Any], int]] = []
    budget = _SEARCH_BUDGET
    with _parse_lock:
        for candidate in extractor.extract_time_candidates(text):
            run: str = candidate["time_candidate"]
            start: int = candidate["offset"][0]
            bias = 0
            while bias < len(run) and budget > 0:
                if number := _LONG_NUMBER.match(run, bias):
                    bias = number.end()
                    continue
                end = min(len(run), bias + _WINDOW)
                # Never cut a number in two: "2026年12月1日上午9点到11点" must not end in "到1".
                while end - bias > 1 and end < len(run) and _is_num(run[end - 1]) and _is_num(run[end]):
                    end -= 1
                budget -= 1
                phrase, result, offset = extractor.grid_search(run[bias:end], time_base=base)
                if phrase is None:
                    bias = end
                    continue
                if phrase not in extractor.non_time_string_list:  # e.g. "一点", as the library does
                    found.append((phrase, result, start + bias + offset[1]))
                bias += offset[1]
            if budget <= 0:
                break
    return found


def _is_num(char: str) -> bool:
    return bool(_NUM_CHAR.match(char))


# --- our layer --------------------------------------------------------------------------------------------


def _normalise(text: str) -> str:
    """Rewrite forms the library misses into ones it reads."""
    text = unicodedata.normalize("NFKC", text)  # full-width digits and colons from Chinese keyboards
    text = _DIGIT_WEEKDAY.sub(lambda m: m[1] + _WEEKDAY_CN[m[2]], text)  # 周5 -> 周五
    text = _MORNING_SHORT.sub(r"\1天早上", text)  # 明早 -> 明天早上

    def dotted(match: re.Match[str]) -> str:
        before = text[match.start() - 1] if match.start() else ""
        if before and before.isalnum() and before not in _DOTTED_AFTER:  # "血糖7.8", "v1.2"
            return match[0]
        return f"{int(match[1])}月{int(match[2])}日"

    return _DOTTED.sub(dotted, text)


def _accepted_days(
    phrase: str, result: dict[str, Any], text: str, end: int, today: date
) -> tuple[date, date] | None:
    """The days a library result means for booking, or None if it is no bookable date."""
    if result.get("type") not in ("time_point", "time_span"):
        return None  # durations ("两天") and repeats ("每周五")
    times = result.get("time")
    if not (isinstance(times, list) and len(times) == 2 and all(isinstance(t, str) for t in times)):
        return None
    if "inf" in times[0] or "inf" in times[1]:
        return None  # open-ended: "中午以后"
    bare = phrase.replace("的", "")
    if _TIME_ONLY.fullmatch(bare):
        return None  # a time of day names no day: the caller pairs it with one asked before
    if _BARE_DAY.fullmatch(bare) and bare.endswith("号") and text[end : end + 1] in _PLACE_AFTER_NUMBER:
        return None  # "3号诊室"
    first = datetime.strptime(times[0][:10], "%Y-%m-%d").date()
    last = datetime.strptime(times[1][:10], "%Y-%m-%d").date()
    if last < first and first - last < timedelta(days=7):
        # "下周一到周三": the library reads the second weekday in this week; it is in the first one's.
        last += timedelta(days=7)
    if last < first or (last - first).days >= _MAX_SPAN_DAYS:
        return None
    if "周末" in bare and first == last and first.weekday() == 6:
        first -= timedelta(days=1)  # the library gives only Sunday
        if bare.startswith("周末"):
            first = max(first, today)
    elif _BARE_WEEKDAY.match(bare) and first < today:
        # The library reads "周五" as this week's; alone it means the next one.
        first, last = first + timedelta(days=7), last + timedelta(days=7)
    elif _BARE_DAY.match(bare) and first < today:
        # The library reads "3号" as this month's; alone it means the next 3rd.
        first = last = _next_day_of_month(first.day, today) or first
    elif _MONTH_DAY.match(bare):
        first, last = _nearest_year(first, today), _nearest_year(last, today)
    return first, last


def _names_a_day(match: re.Match[str], text: str) -> bool:
    return not (match[0].endswith("号") and text[match.end() : match.end() + 1] in _PLACE_AFTER_NUMBER)


def _next_day_of_month(day: int, today: date) -> date | None:
    """The first date on or after `today` falling on the `day`th of a month (a 31st may skip months)."""
    for ahead in range(4):
        index = today.year * 12 + today.month - 1 + ahead
        with contextlib.suppress(ValueError):
            found = date(index // 12, index % 12 + 1, day)
            if found >= today:
                return found
    return None


def _nearest_year(day: date, today: date) -> date:
    """This year's date, or next year's when that is the nearer one.

    "1月5号" said on 20 December means the coming January: bookings open days or weeks ahead, and nobody
    means a day eleven months ago. "11月25号" said on 30 November stays this year's (five days past) so
    the caller can say it has passed rather than book a day a year away.
    """
    if today - day > _HALF_YEAR:
        with contextlib.suppress(ValueError):  # 29 February
            return day.replace(year=day.year + 1)
    return day


def _fallback(text: str, today: date) -> WhenAsked | None:
    """What the library does not read, whichever comes first: a whole month ("下个月", "12月份": it
    wants a day or a year with them) or a day this month lacks ("31号" in November: it gives up)."""
    relative = _RELATIVE_MONTH.search(text)
    named = _NAMED_MONTH.search(text)
    day = next((m for m in _BARE_DAY_IN_TEXT.finditer(text) if _names_a_day(m, text)), None)
    first_match = min((m for m in (relative, named, day) if m), key=lambda m: m.start(), default=None)
    if first_match is None:
        return None
    if day is not None and first_match is day:
        found = _next_day_of_month(int(day[1]), today)
        return WhenAsked(found, found, understand_half_day(text), day[0]) if found else None
    if relative is not None and first_match is relative:
        index = today.year * 12 + today.month - 1 + _MONTH_OFFSETS[relative[1].removesuffix("个")]
        first = date(index // 12, index % 12 + 1, 1)
    elif named is not None:
        number = int(named[1]) if named[1].isdigit() else _CN_MONTHS[named[1]]
        first = date(today.year, number, 1)
        if (today.year * 12 + today.month) - (first.year * 12 + first.month) > 6:
            first = first.replace(year=first.year + 1)  # as `_nearest_year`
    else:
        return None
    next_month = (first.replace(day=28) + timedelta(days=4)).replace(day=1)
    return WhenAsked(first, next_month - timedelta(days=1), understand_half_day(text), first_match[0])
