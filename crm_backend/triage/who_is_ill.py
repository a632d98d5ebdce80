"""Who is ill in a patient's message: the sender, or a family member they name (我爸, 孩子三个月,
宝宝40天), with an age when the message states one. Used by the red-flag screen; pure Python.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict

#: A number in digits or Chinese numerals (38.5, 三, 二十五).
NUMBER = r"(?:\d+(?:\.\d+)?|[零一二两三四五六七八九十百]+)"


class Relation(enum.StrEnum):
    """Who is ill, as the message names them."""

    SELF = "self"
    FATHER = "father"
    MOTHER = "mother"
    SPOUSE = "spouse"
    CHILD = "child"
    INFANT = "infant"
    GRANDPARENT = "grandparent"
    OTHER = "other"


class Patient(BaseModel):
    """Who the message is about; `age_months` when the message (or the record) says it."""

    model_config = ConfigDict(frozen=True)

    relation: Relation = Relation.SELF
    age_months: int | None = None
    words: str | None = None  # the words that named them: 我爸, 宝宝40天


_RELATION_WORDS: dict[Relation, tuple[str, ...]] = {
    Relation.FATHER: ("我爸", "爸爸", "父亲", "老爸", "我爹", "老爷子", "公公", "岳父", "老丈人", "老汉"),
    Relation.MOTHER: ("我妈", "妈妈", "母亲", "老妈", "我娘", "婆婆", "岳母", "丈母娘", "老太太"),
    Relation.SPOUSE: (
        "老公", "老婆", "爱人", "丈夫", "妻子", "媳妇", "太太", "老伴", "孩子他爸", "孩子他妈",
        "孩子爸", "孩子妈", "孩他爸", "孩他妈",
    ),
    Relation.CHILD: (
        "孩子", "小孩", "儿子", "女儿", "宝宝", "宝贝", "娃", "闺女", "小朋友", "儿童", "幼儿", "孙子",
        "孙女", "外孙", "小宝", "小儿",
    ),
    Relation.INFANT: ("婴儿", "新生儿", "小婴儿", "月子里"),
    Relation.GRANDPARENT: ("爷爷", "奶奶", "外公", "外婆", "姥姥", "姥爷", "老人家", "老人"),
    Relation.OTHER: (
        "哥哥", "弟弟", "姐姐", "妹妹", "朋友", "同事", "邻居", "亲戚", "工人", "同学", "室友", "路人",
        "有人",
    ),
}  # fmt: skip
_RELATION_OF = {word: relation for relation, words in _RELATION_WORDS.items() for word in words}
_RELATION_RE = re.compile("|".join(sorted(_RELATION_OF, key=len, reverse=True)))
_CHILD_WORD = "|".join(_RELATION_WORDS[Relation.CHILD] + _RELATION_WORDS[Relation.INFANT])
_ANYONE_WORD = "|".join(sorted(_RELATION_OF, key=len, reverse=True))
_AGE = rf"(?P<num>{NUMBER})(?P<half>个半|个多|个)?(?P<unit>月|周|星期|天|岁)(?P<half2>半)?"
_AGE_AFTER_CHILD = re.compile(
    rf"(?P<who>{_ANYONE_WORD})(?:才|刚|刚满|刚刚|只有|今年|快|现在|满|出生|生下来|已经|有|是|,|，|\s)*{_AGE}"
)
_AGE_BEFORE_CHILD = re.compile(rf"(?:出生|满)?{_AGE}(?:大|多)?的?(?P<who>{_CHILD_WORD})")
_BORN_DAYS = re.compile(rf"出生(?:才|刚)?{_AGE}")
_NEWBORN = re.compile(
    "新生儿|新生宝宝|新生的|刚出生|没满月|未满月|刚满月|满月|月子里|还在月子|刚出月子|出月子"
)

_CN_DIGITS = dict(zip("零一二两三四五六七八九", (0, 1, 2, 2, 3, 4, 5, 6, 7, 8, 9), strict=True))


def _number(text: str) -> float | None:
    """A number in digits or Chinese up to 999 (四十, 二十五, 一百)."""
    if text[0].isdigit():
        return float(text)
    total, current = 0, 0
    for char in text:
        if char in _CN_DIGITS:
            current = _CN_DIGITS[char]
        elif char == "十":
            total += (current or 1) * 10
            current = 0
        elif char == "百":
            total += (current or 1) * 100
            current = 0
        else:
            return None
    return float(total + current)


def _age_months(match: re.Match[str]) -> int | None:
    value = _number(match["num"])
    if value is None:
        return None
    if match["half"] == "个半" or match["half2"]:
        value += 0.5
    months = {"天": 1 / 30.4, "周": 7 / 30.4, "星期": 7 / 30.4, "月": 1, "岁": 12}[match["unit"]] * value
    return int(months + 1e-9)


@dataclass(frozen=True)
class Named:
    """A person the message names, where, and their age if it says."""

    relation: Relation
    start: int
    age_months: int | None
    words: str


def people_in(text: str, known_age_months: int | None = None) -> list[Named]:
    """Everyone the message names as possibly ill, in order; ages attached to the word they follow."""
    named: list[Named] = []
    ages: dict[int, tuple[int, str]] = {}
    for pattern in (_AGE_AFTER_CHILD, _AGE_BEFORE_CHILD):
        for match in pattern.finditer(text):
            months = _age_months(match)
            if months is not None:
                ages.setdefault(match.start("who"), (months, match[0]))
    for match in _BORN_DAYS.finditer(text):
        months = _age_months(match)
        if months is not None:
            ages.setdefault(match.start(), (months, match[0]))
    newborn = _NEWBORN.search(text)
    for match in _RELATION_RE.finditer(text):
        relation = _RELATION_OF[match[0]]
        age, words = ages.get(match.start(), (None, match[0]))
        if relation in (Relation.CHILD, Relation.INFANT) and age is None and newborn:
            age, words = 0, newborn[0]
        if relation is Relation.CHILD and age is not None and age < 12:
            relation = Relation.INFANT
        named.append(Named(relation, match.start(), age, words))
    for start, (age, words) in ages.items():
        if not any(person.start == start for person in named):
            named.append(Named(Relation.INFANT if age < 12 else Relation.CHILD, start, age, words))
    if newborn and not any(p.relation in (Relation.CHILD, Relation.INFANT) for p in named):
        named.append(Named(Relation.INFANT, newborn.start(), 0, newborn[0]))
    named.sort(key=lambda person: person.start)
    if known_age_months is not None:
        named = [
            Named(
                p.relation, p.start, p.age_months if p.age_months is not None else known_age_months, p.words
            )
            for p in named
        ] or [Named(Relation.SELF, 0, known_age_months, "")]
    return named


# Words that name a kind of person rather than someone in particular (孩子高热惊厥需要注意什么),
# unless the message makes them its own (我家孩子, 俺孩子).
_GENERIC_PEOPLE = frozenset(
    {"孩子", "小孩", "宝宝", "儿童", "小朋友", "幼儿", "婴儿", "新生儿", "老人", "老人家", "有人"}
)
_OWN = re.compile("(?:我|俺|咱)(?:家|们家|的)?$")


def names_somebody(text: str) -> bool:
    """Does the message name a particular person (我爸, 老公, 我家孩子)?"""
    return any(
        match[0] not in _GENERIC_PEOPLE or _OWN.search(text[max(0, match.start() - 3) : match.start()])
        for match in _RELATION_RE.finditer(text)
    )


def patient_at(people: list[Named], position: int, known_age_months: int | None = None) -> Patient:
    """The person named nearest before `position`, else a child named after it (发烧了，宝宝两个月),
    else the sender."""
    before = [p for p in people if p.start <= position]
    children_after = [p for p in people if p.relation in (Relation.CHILD, Relation.INFANT)]
    chosen = before[-1] if before else (children_after[0] if children_after else None)
    if chosen is None:
        return Patient(relation=Relation.SELF, age_months=known_age_months)
    return Patient(relation=chosen.relation, age_months=chosen.age_months, words=chosen.words or None)
