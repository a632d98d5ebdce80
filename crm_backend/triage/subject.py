"""Who a triage question is about, read from the patient's words: "孩子三岁", "我爸", "怀孕五个月".

The person named and their stated age are who_is_ill's reading (the red-flag screen's), so both
triage layers agree on who is ill; this module adds what departments need besides: the sender's
own age ("我30岁"), school ages, sex and pregnancy.

The dialogue may already know the 就诊人 (age, sex); what it knows wins, and the words only fill the
gaps. Children's words used for something else ("生孩子", "没孩子", a fetus's "宝宝在动") do not make
the question a child's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from crm_backend.triage.catalogue import Sex
from crm_backend.triage.who_is_ill import Relation, people_in

#: Under this age (years) a patient is a child: 儿科 sees 0–13 in Chinese hospitals.
CHILD_UNTIL = 14

_CN_DIGITS = {
    "零": 0,
    "一": 1,
    "二": 2,
    "两": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
    "八": 8,
    "九": 9,
}
_NUMBER = r"(\d{1,3}|[零一二两三四五六七八九十]{1,3})"

_CHILD = re.compile(
    r"孩子|小孩|宝宝|宝贝|娃|儿子|女儿|闺女|小朋友|婴儿|新生儿|孙子|孙女|外孙|小学生|男孩|女孩|小宝"
)
#: A child word that is not the patient: "生孩子", "没孩子", "带孩子", "要孩子", "怀宝宝".
_NOT_THE_PATIENT = re.compile(r"(?:生|没|要|带|怀|有|无)(?:孩子|小孩|宝宝|娃)|宝宝(?:动|踢)|胎")
_ADULT = re.compile(
    r"我爸|我妈|爸爸|妈妈|父亲|母亲|老公|老婆|丈夫|妻子|媳妇|爷爷|奶奶|外公|外婆|姥姥|姥爷|老人|老伴|公公|婆婆|岳父|岳母"
)
_MALE = re.compile(
    r"爸|父亲|老公|丈夫|儿子|爷爷|外公|姥爷|哥哥|弟弟|男朋友|男孩|男的|孙子|公公|岳父|叔叔|伯伯|舅舅|男性|男人|老头"
)
_FEMALE = re.compile(
    r"妈|母亲|老婆|妻子|媳妇|女儿|闺女|奶奶|外婆|姥姥|姐|妹|女朋友|女孩|女的|孙女|婆婆|岳母|阿姨|女性|女人|老太"
)
_YEARS = re.compile(_NUMBER + r"\s*(?:周岁|岁)(半)?")
_MONTHS = re.compile(_NUMBER + r"\s*个?月(?:大|了|的)?")
_SCHOOL = (("幼儿园", 4), ("小学", 8), ("初中", 13), ("高中", 16), ("大学", 19))
_PREGNANT = re.compile(
    r"怀孕|怀了|怀上|孕妇|孕期|孕早期|孕中期|孕晚期|孕\s*\d|孕[一二三四五六七八九十]|妊娠|孕吐|两条杠|两道杠|产检|建档|预产期|胎动|胎心"
)
_NEGATION_BEFORE = re.compile(r"(?:没|没有|未|不是|并没有|无)$")
#: "是不是怀孕了", "有没有怀孕" ask; they do not deny.
_ASKING = re.compile(r"(?:是不是|是不|有没有|有没)$")


def cn_number(text: str) -> int | None:
    """ "12" or "十二" / "二十" / "三" as a number; None when it is neither."""
    if text.isdigit():
        return int(text)
    if "十" in text:
        tens, _, units = text.partition("十")
        return (_CN_DIGITS.get(tens, 1) if tens else 1) * 10 + (_CN_DIGITS.get(units, 0) if units else 0)
    if len(text) == 1 and text in _CN_DIGITS:
        return _CN_DIGITS[text]
    return None


@dataclass(frozen=True, slots=True)
class Subject:
    """The patient the question is about, as far as anyone knows."""

    age_years: int | None = None
    sex: Sex | None = None
    pregnant: bool = False

    @property
    def is_child(self) -> bool:
        return self.age_years is not None and self.age_years < CHILD_UNTIL


def _not_negated(text: str, start: int) -> bool:
    before = text[max(0, start - 4) : start]
    return not _NEGATION_BEFORE.search(before) or bool(_ASKING.search(before))


def pregnancy_in(text: str) -> bool:
    return any(_not_negated(text, m.start()) for m in _PREGNANT.finditer(text))


def _child_named(text: str) -> bool:
    cleaned = _NOT_THE_PATIENT.sub("", text)
    return bool(_CHILD.search(cleaned))


def age_in(text: str, *, pregnant: bool) -> int | None:
    """The age the words give, in whole years; a child's age in months counts as 0."""
    child = _child_named(text)
    if not pregnant:
        # A person the message names with an age (我爸65岁, 孩子8个月, 宝宝40天), as the screen reads it.
        aged = [p for p in people_in(text) if p.age_months is not None and p.relation is not Relation.SELF]
        if aged:
            return aged[0].age_months // 12
    years = _YEARS.search(text)
    if years and (number := cn_number(years.group(1))) is not None:
        return number
    if child and not pregnant:
        months = _MONTHS.search(text)
        if months and (number := cn_number(months.group(1))) is not None and number < 36:
            return number // 12
        for school, age in _SCHOOL:
            if school in text:
                return age
        return 6  # a child of unknown age: what matters is that it is under 14
    if _ADULT.search(text):
        return 40  # a parent, a spouse, an elderly relative: an adult of unknown age
    return None


def sex_in(text: str) -> Sex | None:
    cleaned = _NOT_THE_PATIENT.sub("", text)
    male, female = _MALE.search(cleaned), _FEMALE.search(cleaned)
    if male and female:  # the first person named is usually the one who is ill
        return Sex.MALE if male.start() < female.start() else Sex.FEMALE
    return Sex.MALE if male else Sex.FEMALE if female else None


def read_subject(
    text: str, *, age_years: int | None = None, sex: Sex | str | None = None, pregnant: bool | None = None
) -> Subject:
    """What the dialogue knows, completed from the words."""
    is_pregnant = pregnancy_in(text) if pregnant is None else pregnant
    known_sex = Sex(sex) if sex else None
    subject_sex = known_sex or (Sex.FEMALE if is_pregnant else sex_in(text))
    if subject_sex is Sex.MALE:
        is_pregnant = False
    age = age_years if age_years is not None else age_in(text, pregnant=is_pregnant)
    return Subject(age_years=age, sex=subject_sex, pregnant=is_pregnant)
