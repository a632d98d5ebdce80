"""What a patient's reply means inside the complaint dialogues: plain word lists, no model.

Kept apart from the actions (and free of rasa_sdk) so the readings are table-tested on their own
(tests/unit/test_complaints_reading.py). While a complaint form asks, every message is read here
first: the intent Rasa guessed never decides what an answer means.
"""

from __future__ import annotations

import enum
import re

_NOT_WORDS = re.compile(r"[\s\W_]+")

#: A short message naming a person is a request for one ("转人工", "我要人工客服").
PERSON_WORDS = ("人工", "真人", "客服", "转接")
#: Stopping the intake: only short messages count, so a story that ends in "算了" is still a story.
STOP_WORDS = ("算了", "不投诉了", "不说了", "取消", "不用了", "不弄了", "不想投诉了", "不表扬了", "退出")
SHORT_REPLY_CHARS = 12

#: Who was involved is optional: these mean "I don't know" or "skip".
SKIP_WORDS = ("跳过", "不知道", "不清楚", "不记得", "忘了", "没注意", "没有", "无", "不确定", "略", "没看到")

#: A request that says only "I want to complain": the story is asked for next.
_REQUEST_ONLY = re.compile(
    r"^(?:你好|您好|喂)?(?:我|我们|我家)?(?:要|想|想要|需要)?(?:对你们)?"
    r"(?:投诉|投拆|投述|表扬|表杨|提意见|反映|反应)(?:一下|下)?(?:你们|你们医院|医院)?(?:的)?(?:问题|情况|事情)?$"
)
#: Under this many characters of its own (besides the request), the first message is not the story.
STORY_MIN_CHARS = 8


class Confirmation(enum.StrEnum):
    YES = "yes"
    FIX = "fix"
    UNCLEAR = "unclear"


_FIX_WORDS = ("改", "不对", "不是", "有误", "更正", "修正", "写错", "记错", "错了")
_YES_WORDS = ("确认", "对", "是的", "是", "没问题", "没错", "可以", "好", "提交", "嗯", "行", "ok", "正确")

#: The parts of the record a patient may correct, by number and by the words that name them.
PARTS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("complaint_what", "经过", ("经过", "事情", "内容", "发生", "描述")),
    ("complaint_when", "时间", ("时间", "什么时候", "日期", "几号", "哪天")),
    ("complaint_where", "地点", ("地点", "科室", "病区", "地方", "哪里", "位置")),
    ("complaint_who", "涉及人员", ("人员", "名字", "姓名", "工号", "是谁", "哪位", "医生", "护士")),
    ("complaint_wish", "诉求", ("诉求", "要求", "希望", "想要")),
)

_UNSURE = re.compile(r"说不好|不好说|不知道|不确定|考虑|想想|再看|看看")
_REFUSE = re.compile(
    r"不太?(?:接受|满意|同意|认可|行|服|可以|能接受)|没法接受|无法接受|拒绝|有异议|还要投诉|继续投诉"
)
_ACCEPT = re.compile(r"接受|满意|同意|认可|可以|没问题|^(?:好|好的|行|是|是的|嗯|ok)$")
_CHINESE_DIGITS = {"一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5}
#: A score in words needs its unit ("四分", "三星"): a bare 一 is also the 一 of 一般.
_SPOKEN_SCORE = re.compile(r"([一二两三四五])(?:分|星|颗星)")
_SCORE_WORDS = (
    (re.compile(r"非常不满意|很不满意|太差|极差"), 1),
    (re.compile(r"不满意"), 2),
    (re.compile(r"非常满意|很满意|特别满意"), 5),
    (re.compile(r"满意"), 4),
    (re.compile(r"一般|还行|凑合"), 3),
)


def plain(text: str) -> str:
    return _NOT_WORDS.sub("", text).lower()


def asks_for_person(text: str) -> bool:
    words = plain(text)
    return len(words) <= SHORT_REPLY_CHARS and any(word in words for word in PERSON_WORDS)


def wants_to_stop(text: str) -> bool:
    words = plain(text)
    return len(words) <= SHORT_REPLY_CHARS and any(word in words for word in STOP_WORDS)


def is_skip(text: str) -> bool:
    words = plain(text)
    return len(words) <= SHORT_REPLY_CHARS and any(word in words for word in SKIP_WORDS)


def story_in(first_message: str) -> str | None:
    """The first message when it already tells what happened ("我要投诉儿科护士态度差"), else None."""
    text = first_message.strip()
    if text.startswith("/"):
        return None
    words = plain(text)
    if _REQUEST_ONLY.match(words) or len(words) < STORY_MIN_CHARS:
        return None
    return text


def read_confirmation(text: str) -> Confirmation:
    words = plain(text)
    if any(word in words for word in _FIX_WORDS):
        return Confirmation.FIX
    if any(word in words for word in _YES_WORDS):
        return Confirmation.YES
    return Confirmation.UNCLEAR


def part_named(text: str, parts: list[str]) -> str | None:
    """The slot of the part the patient wants to correct: by its number in `parts` or in words."""
    words = plain(text)
    digits = re.findall(r"\d", words)
    if len(digits) == 1 and 1 <= int(digits[0]) <= len(parts):
        return parts[int(digits[0]) - 1]
    for slot, _, names in PARTS:
        if slot in parts and any(name in words for name in names):
            return slot
    return None


def part_label(slot: str) -> str:
    return next(label for name, label, _ in PARTS if name == slot)


def read_acceptance(text: str) -> bool | None:
    """接受 / 不接受 the outcome (None: unclear). Doubt and negation decide first: 说不好 is unclear,
    不太满意 is not accepting."""
    words = plain(text)
    if _UNSURE.search(words):
        return None
    if _REFUSE.search(words) or words in ("不", "否", "no"):
        return False
    if _ACCEPT.search(words):
        return True
    return None


def read_satisfaction(text: str) -> int | None:
    """A score from 1 to 5 ("4", "四分", "5星", "非常满意" 5, "很不满意" 1); None when unclear."""
    words = plain(text)
    numbers = set(re.findall(r"\d+", words))
    if numbers:
        only = numbers.pop() if len(numbers) == 1 else ""
        return int(only) if only in ("1", "2", "3", "4", "5") else None
    spoken = set(_SPOKEN_SCORE.findall(words)) or ({words} if words in _CHINESE_DIGITS else set())
    if len(spoken) == 1:
        return _CHINESE_DIGITS[spoken.pop()]
    if spoken:
        return None
    for pattern, score in _SCORE_WORDS:
        if pattern.search(words):
            return score
    return None
