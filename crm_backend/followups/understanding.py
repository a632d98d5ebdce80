"""Free Chinese answers to a check-in question, read into the value its type needs.

Patients answer in their own words: "三十八度二", "38度5", "有点疼，大概5分", "五六分", "不红",
"伤口有点红但不流水", "1和3", "恶心，没吐", "都没有". `read_answer(question, text)` turns such a
message into the value `scoring.check_value` accepts, or says it is unclear or out of range with the
hint the patient is asked again with. Where words leave room, the reading leans towards the more
worrying answer (over-triage): "五六分" is 6, "不太红" is red, two choices for one are read as the
more worrying of them. `digression_of(text)` recognises what is not an answer at all: later,
no more follow-up, a person, or a question of the patient's own.

Pure and fast: plain `re`, no model. The red-flag screen has already read every message before it
reaches the check-in (conversations/route.py), so an emergency in words never depends on this.
"""

from __future__ import annotations

import enum
import functools
import re
from dataclasses import dataclass
from typing import Any

from crm_backend.followups.plans import Choice, Flag, Question, QuestionType
from crm_backend.followups.scoring import AnswerRefused, assess_answer, check_value


class Reading(enum.StrEnum):
    #: `value` is the answer.
    answer = "answer"
    #: Not understood: ask again with `hint`.
    unclear = "unclear"
    #: A number outside the question's range: ask again naming the range.
    out_of_range = "out_of_range"


@dataclass(frozen=True)
class Understood:
    reading: Reading
    value: Any = None
    #: What the patient is told before the question is asked again (unclear, out of range).
    hint: str = ""


class Digression(enum.StrEnum):
    #: "稍后再说": ask again later today.
    postpone = "postpone"
    #: "不想再收到随访": stop follow-up, once confirmed.
    opt_out = "opt_out"
    #: "人工": a person.
    handoff = "handoff"


# -- text ---------------------------------------------------------------------------------------

_FULL_WIDTH = str.maketrans("０１２３４５６７８９．，！？：；　～－", "0123456789.,!?:; ~-")
#: Where one statement ends and the next begins ("有点红，但不流水").
_CLAUSE_BREAK = re.compile(r"[,.;!?，。；！？、\s]+|但是|但|不过|可是|而且|还有|也|和|及|跟")
_FILLER = re.compile(r"^(?:嗯+|呃+|额+|哦+|啊+|就是|大概|应该|好像|感觉|我觉得|目前|现在|今天)")
#: "不太红", "不是很疼": a little, which over-triage counts as present.
_SOFT_NEGATION = re.compile(r"不太|不是很|不怎么|没那么|不算太|不是特别|不大")
_NEGATORS = "不没无未别"
_UNSURE = re.compile(r"不知道|不清楚|不确定|说不好|说不清|不记得|记不清|忘了|没注意|没留意|没量|没测|不好说")
_SO_SO = re.compile(
    r"^(?:还行|还好|还可以|一般|凑合|马马虎虎|差不多|好多了|好些了|还凑合|还成)(?:吧|啊|呀|了)?$"
)


def _normalise(text: str) -> str:
    return text.translate(_FULL_WIDTH).strip().lower()


def _clauses(text: str) -> list[str]:
    parts = [_FILLER.sub("", part) for part in _CLAUSE_BREAK.split(text)]
    return [part for part in parts if part]


def _plain(text: str) -> str:
    return re.sub(r"[\s,.;!?，。；！？、~～…]+", "", text)


def _negated_at(text: str, start: int) -> bool:
    """A negator right before position `start` ("不红", "没有红", "没有出现红")."""
    before = text[max(0, start - 4) : start]
    if re.search(rf"(?:{_SOFT_NEGATION.pattern})$", before):
        return False  # "不太红": a little red
    return any(mark in before[-2:] for mark in _NEGATORS) or bool(re.search(r"没有|并没|从没|没出现", before))


# -- numbers ------------------------------------------------------------------------------------

_DIGITS = {
    "零": 0,
    "〇": 0,
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
_CN = "零〇一二两三四五六七八九十"
_CN_DIGIT = "零〇一二三四五六七八九"
#: A number and what follows it: "38.5", "38度5", "三十八度二", "三十七点五", "五六分", "5到6分".
_NUMBER = re.compile(
    rf"(?P<whole>[0-9]+(?:\.[0-9]+)?|[{_CN}]+)"
    rf"(?:(?:点|度|\.)(?P<frac>[0-9]+|[{_CN_DIGIT}]+))?"
)
#: Units that say a number is something else: days, times, tablets, age, dates.
_OTHER_UNIT = re.compile(
    r"^\s*(?:天|日|次|回|遍|片|粒|颗|袋|支|个|岁|号|月|年|周|星期|礼拜|小时|分钟|斤|公斤|kg|ml|毫升|顿|口|步|米|层|楼)"
)
#: Words in which a numeral is not a number ("一点疼", "一直", "一下").
_NOT_A_NUMBER = re.compile(
    r"^(?:点(?![0-9零〇一二三四五六七八九])|些|下|直|样|般|起|会|共|定|旦|边|侧|阵|身|切|整|向|天天|十分)"
)
_RANGE_JOIN = re.compile(r"^\s*(?:到|至|~|-|—|或|或者|、|/)\s*$")
#: "38度多", "38多度", "38度几", "4分多": more than a whole number, by how much unsaid.
_AND_SOME = re.compile(r"^(?:度|点|分)?(?:多|几)")
#: What "N度多" is read as: N.5, the middle of the unsaid part, which meets a threshold at N.5 (a
#: temperature of "38度多" is red at ≥ 38.5): over-triage rather than asking again.
AND_SOME = 0.5


def _cn_integer(text: str) -> int | None:
    """0–99 (and 100) in Chinese numerals: 三十八, 十二, 八, 一百."""
    if text == "一百":
        return 100
    if not text or any(ch not in _CN for ch in text):
        return None
    if "十" not in text:
        return _DIGITS[text] if len(text) == 1 else None
    tens, _, ones = text.partition("十")
    if len(tens) > 1 or len(ones) > 1:
        return None
    high = _DIGITS[tens] if tens else 1
    return high * 10 + (_DIGITS[ones] if ones else 0)


def _value_of(whole: str, frac: str | None) -> float | None:
    if whole[0].isdigit():
        number = float(whole)
    else:
        integer = _cn_integer(whole)
        if integer is None:
            return None
        number = float(integer)
    if frac:
        digits = frac if frac[0].isdigit() else "".join(str(_DIGITS[ch]) for ch in frac)
        if "." in whole:
            return None
        number = float(f"{int(number)}.{digits}")
    return number


@dataclass(frozen=True)
class _Found:
    value: float
    start: int
    end: int


def numbers_in(text: str) -> list[float]:
    """The numbers a patient's answer gives, ranges read as their higher end ("五六分" → 6,
    "38到39度" → 39, "三十八九度" → 39); numbers that count something else ("3天", "2片") are left out."""
    text = _normalise(text)
    found: list[_Found] = []
    for match in _NUMBER.finditer(text):
        whole, frac = match.group("whole"), match.group("frac")
        after = text[match.end() :]
        if not whole[0].isdigit():
            if _NOT_A_NUMBER.match(text[match.end("whole") :]) and frac is None:
                continue
            if len(whole) == 2 and "十" not in whole and whole[0] in _DIGITS and whole[1] in _DIGITS:
                # "五六分", "三四天": two neighbouring numbers, a range.
                low, high = _DIGITS[whole[0]], _DIGITS[whole[1]]
                if high == low + 1 and not _OTHER_UNIT.match(after):
                    found.append(_Found(float(high), match.start(), match.end()))
                continue
            if len(whole) == 4 and whole[1] == "十" and whole[3] in _DIGITS and whole[2] in _DIGITS:
                # "三十八九": 38 or 39.
                tens = _DIGITS[whole[0]] * 10
                if _DIGITS[whole[3]] == _DIGITS[whole[2]] + 1:
                    found.append(_Found(float(tens + _DIGITS[whole[3]]), match.start(), match.end()))
                continue
        if _OTHER_UNIT.match(after):
            continue
        value = _value_of(whole, frac)
        if value is not None and frac is None and value % 10 and _AND_SOME.match(after):
            value += AND_SOME  # "38度多"; not "三十多", which is no reading at all
        if value is not None:
            found.append(_Found(value, match.start(), match.end()))
    values: list[float] = []
    for index, item in enumerate(found):
        if index and _RANGE_JOIN.match(text[found[index - 1].end : item.start]) and values:
            values[-1] = max(values[-1], item.value)  # "5到6": the higher end
        else:
            values.append(item.value)
    return values


# -- scale and number ---------------------------------------------------------------------------

_NO_PAIN = re.compile(
    r"^(?:没有|没|无|不)$|不疼|不痛|没疼|没痛|没有疼|没有痛|没感觉|没什么感觉|无痛|不怎么疼了|已经不疼|一点也不|一点都不|完全不"
)
_SEVERE = re.compile(
    r"厉害|很疼|很痛|非常|特别|剧烈|剧痛|受不了|忍不了|难受|疼死|痛死|要命|好疼|好痛|挺疼|挺痛|太疼|太痛"
)


def _range_hint(question: Question) -> str:
    unit = f"（单位：{question.unit}）" if question.type == QuestionType.number and question.unit else ""
    return f"请回复 {question.low:g} 到 {question.high:g} 之间的数字{unit}。"


def _hint(question: Question) -> str:
    if question.hint:
        return question.hint
    if question.type == QuestionType.scale:
        return "请回复 0 到 10 之间的一个数字：0 分是完全不痛，10 分是能想象的最痛。"
    if question.type == QuestionType.number:
        return _range_hint(question)
    if question.type == QuestionType.yes_no:
        return "请回复“有”或“没有”。"
    if question.type == QuestionType.multiple_choice:
        return "请回复序号（可以多个，比如“1 3”），都没有的话回复“没有”。"
    if question.type == QuestionType.single_choice:
        return f"请回复序号 1 到 {len(question.choices)}。"
    return "请用文字简单描述一下。"


def _unclear(question: Question, lead: str = "抱歉，我没太明白。") -> Understood:
    return Understood(Reading.unclear, hint=f"{lead}{_hint(question)}")


def _read_number(question: Question, text: str) -> Understood:
    values = numbers_in(text)
    if question.type == QuestionType.scale and not values:
        plain = _plain(_normalise(text))
        if _NO_PAIN.search(plain) and not _SOFT_NEGATION.search(plain):
            return Understood(Reading.answer, 0)
        if _SEVERE.search(plain):
            return _unclear(question, "听起来疼得比较厉害。为了判断轻重，请给疼痛打个分。")
    if not values:
        return _unclear(question)
    allowed = [v for v in values if question.low <= v <= question.high]
    if not allowed:
        shown = f"{values[0]:g}{question.unit if question.type == QuestionType.number else ''}"
        return Understood(
            Reading.out_of_range, hint=f"您回复的是 {shown}，超出了正常的填写范围。{_range_hint(question)}"
        )
    value = max(allowed)  # several numbers ("昨天38.6，今天37.5"): the most worrying one
    if question.type == QuestionType.scale:
        if value != int(value):
            value = float(int(value) + 1)  # "4.5分": the higher whole score
        return Understood(Reading.answer, int(value))
    return Understood(Reading.answer, float(value))


# -- yes / no -----------------------------------------------------------------------------------

_NO_WORDS = re.compile(
    r"^(?:没有|没|无|不|不是|否|没呢|还没有|都没有|没有的|没有啊|没有呢|从来没有|一次也没有|不会|正常|没事|没问题)$"
)
_YES_WORDS = re.compile(
    r"^(?:有|是|是的|对|对的|嗯|嗯嗯|有的|有啊|有呢|会|好像有|有一点|有点|有些|稍微有点|一点点)$"
)
_YES_MARK = re.compile(r"有|是|对|过|了|点|些|挺|很|比较|特别|稍微|严重|厉害")
_QUESTION_NOISE = re.compile(
    r"有没有|是不是|会不会|吗|呢|么|[？?，,。、：]|请|您|今天|现在|最近|还|以后|出院"
)


def _topic_chars(question: Question) -> set[str]:
    """The characters naming what is asked about ("伤口发红吗" → 伤口发红), for a bare "红了"."""
    return set(_QUESTION_NOISE.sub("", question.text)) - set("的了过得一下这那个吧")


def _read_yes_no(question: Question, text: str) -> Understood:
    plain = _plain(_normalise(text))
    if not plain:
        return _unclear(question)
    if _UNSURE.search(plain):
        return _unclear(question, "没关系，")
    if _NO_WORDS.match(plain):
        return Understood(Reading.answer, False)
    if _YES_WORDS.match(plain):
        return Understood(Reading.answer, True)
    clauses = _clauses(_normalise(text))
    first = _SOFT_NEGATION.sub("有点", clauses[0]) if clauses else ""
    if _SO_SO.match(first):
        return _unclear(question, "想确认一下：")
    if _NO_WORDS.match(first):
        return Understood(Reading.answer, False)
    if _YES_WORDS.match(first):
        return Understood(Reading.answer, True)
    negated = bool(re.match(rf"^(?:[{_NEGATORS}]|并没|从没|从来没)", first))
    if negated:
        return Understood(Reading.answer, False)
    if _YES_MARK.search(first) or set(first) & _topic_chars(question):
        return Understood(Reading.answer, True)
    return _unclear(question)


# -- choices ------------------------------------------------------------------------------------

_NONE_OF_THEM = re.compile(
    r"^(?:都没有|都没|都不是|没有|没|无|都无|一个都没有|一样都没有|以上都没有|以上都不是|都还好|都正常|全都没有|没有这些|这些都没有|没有以上情况)(?:的|啊|呢|了)?$"
)
#: "2", "第2个", "选2", "1和3", "1 3", "1、3": the numbers only, when that is all the message says.
_CHOICE_NUMBERS = re.compile(
    r"^(?:选|第|选第|我选)?(?:[0-9一二三四五六七八九十 ,，、和及与跟还有/第个项条号.。选]|或者|或)+$"
)


def _choice_numbers(text: str, count: int) -> list[int] | None:
    plain = _normalise(text).replace(" ", " ")
    if not _CHOICE_NUMBERS.match(plain.replace(" ", "")) and not re.fullmatch(r"[0-9 ]+", plain):
        return None
    picked: list[int] = []
    for token in re.findall(r"[0-9]+|[一二三四五六七八九十]+", plain):
        if token.isdigit():
            if int(token) <= count or len(token) == 1:
                picked.append(int(token))
            else:
                picked += [int(ch) for ch in token]  # "13" among four choices: 1 and 3
        else:
            number = _cn_integer(token)
            if number is None:
                return None
            picked.append(number)
    return picked or None


#: Everyday words for one symptom, any of which names a choice that uses one of them: a danger-sign
#: question's breathlessness choice is named by "有点喘" or "憋得慌" whatever its own words are
#: (over-triage: breathlessness after an operation is never left unread).
_SYMPTOM_WORDS = (("喘", "气短", "气急", "憋", "呼吸困难", "上不来气", "透不过气", "喘不过气"),)
#: Clauses that say nothing about the question: courtesy, not an unread symptom.
_COURTESY = re.compile(r"^(?:谢谢|谢了|谢谢医生|谢谢护士|辛苦了|好的|好|嗯+|哦+|放心吧)(?:啊|了|呀)?$")


def _phrases(choice: Choice) -> list[str]:
    parts = [p for p in re.split(r"[，,、；;（）()]|或者|，但", choice.text) if len(p) >= 2]
    return [choice.text, *choice.synonyms, *parts]


@dataclass(frozen=True)
class _Match:
    choice: Choice
    length: int
    negated: bool
    start: int = 0
    end: int = 0

    def inside(self, other: _Match) -> bool:
        """Part of a longer phrase ("吐" in "想吐"): the longer one is what was said."""
        return (
            other is not self
            and other.start <= self.start
            and self.end <= other.end
            and other.length > self.length
        )


@functools.cache
def _loosely(phrase: str) -> re.Pattern[str]:
    """A phrase with a few words between its characters: "小腿肿" in "小腿有点肿"."""
    if len(phrase) < 2:
        return re.compile(re.escape(phrase))
    return re.compile("(?:[^，。,.、]{0,3}?)".join(re.escape(ch) for ch in phrase))


def _matches_in(clause: str, question: Question) -> list[_Match]:
    """Every choice the clause names, each by its longest phrase; a phrase inside a longer one that
    names another choice ("吐" inside "想吐") does not count."""
    every: list[_Match] = []
    for choice in question.choices:
        for phrase in _phrases(choice):
            phrase = _normalise(phrase)
            found_at = _loosely(phrase).search(clause)
            if found_at is not None:
                start = found_at.start()
                every.append(_Match(choice, len(phrase), _negated_at(clause, start), start, found_at.end()))
            elif len(clause) >= 2 and clause in phrase:
                rest = phrase.replace(clause, "", 1)
                if not any(mark in rest for mark in _NEGATORS):  # "恶心" is not "不恶心"
                    every.append(_Match(choice, len(clause), _negated_at(clause, 0), 0, len(clause)))
    every += _symptom_matches(clause, question)
    kept = [m for m in every if not any(m.inside(other) for other in every)]
    best: dict[str, _Match] = {}
    for match in kept:
        if match.choice.code not in best or match.length > best[match.choice.code].length:
            best[match.choice.code] = match
    return list(best.values())


def _symptom_matches(clause: str, question: Question) -> list[_Match]:
    """Choices named through a symptom's everyday words (_SYMPTOM_WORDS)."""
    found: list[_Match] = []
    for words in _SYMPTOM_WORDS:
        said = [(clause.find(word), word) for word in words if word in clause]
        if not said:
            continue
        start, word = min(said)
        for choice in question.choices:
            if any(w in phrase for phrase in _phrases(choice) for w in words):
                found.append(_Match(choice, len(word), _negated_at(clause, start), start, start + len(word)))
    return found


def _says_none(choice: Choice) -> bool:
    """A choice that answers "nothing of the kind" ("没有", "没吐")."""
    return bool(_NONE_OF_THEM.match(_plain(choice.text))) or choice.text.startswith(tuple(_NEGATORS))


def _worst(question: Question, codes: list[str]) -> str:
    """Of several choices for one, the most worrying (over-triage); of equally worrying ones, a
    symptom before "nothing" ("没吐，就是有点恶心" is nausea), then the first named."""
    choices = {choice.code: choice for choice in question.choices}

    def rank(code: str) -> tuple[int, bool]:
        try:
            flag = assess_answer(question, code).flag.rank
        except (AnswerRefused, TypeError):
            flag = Flag.green.rank
        return flag, not _says_none(choices[code])

    return max(codes, key=rank)


def _read_choices(question: Question, text: str) -> Understood:
    multiple = question.type == QuestionType.multiple_choice
    count = len(question.choices)
    numbers = _choice_numbers(text, count)
    if numbers is not None:
        if any(not 1 <= n <= count for n in numbers):
            return Understood(Reading.out_of_range, hint=f"请回复 1 到 {count} 之间的序号。")
        codes = list(dict.fromkeys(question.choices[n - 1].code for n in numbers))
        if multiple:
            return Understood(Reading.answer, codes)
        return Understood(Reading.answer, _worst(question, codes))
    normalised = _normalise(text)
    plain = _plain(normalised)
    if _UNSURE.search(plain):
        return _unclear(question, "没关系，")
    positive: list[str] = []
    unread: list[str] = []
    said_none = False
    for clause in _clauses(normalised) or [plain]:
        matches = _matches_in(clause, question)
        kept = [m for m in matches if not m.negated]
        if kept:
            longest = max(m.length for m in kept)
            chosen = [m.choice.code for m in kept if multiple or m.length == longest]
            positive += chosen
        elif matches or _NONE_OF_THEM.match(_plain(clause)):
            said_none = True
        elif not _COURTESY.match(clause):
            unread.append(clause)
    positive = list(dict.fromkeys(positive))
    if positive:
        return Understood(Reading.answer, positive if multiple else _worst(question, positive))
    if unread:
        # "都没有，就是有点头晕": "none" only when every statement is one of the choices, negated,
        # or "none"; something else was said, so ask again naming it.
        said = "，".join(unread)[:20]
        return _unclear(question, f"您提到“{said}”，想确认一下是否属于下面的情况。")
    if multiple and said_none:
        return Understood(Reading.answer, [])
    return _unclear(question)


# -- the one entry point ------------------------------------------------------------------------


def read_answer(question: Question, text: str) -> Understood:
    """The patient's message as an answer to `question`, checked by scoring.check_value."""
    if not _plain(_normalise(text)):
        return _unclear(question)
    kind = question.type
    if kind == QuestionType.free_text:
        result = Understood(Reading.answer, text.strip()[:1000])
    elif kind in (QuestionType.scale, QuestionType.number):
        result = _read_number(question, text)
    elif kind == QuestionType.yes_no:
        result = _read_yes_no(question, text)
    else:
        result = _read_choices(question, text)
    if result.reading != Reading.answer:
        return result
    try:
        return Understood(Reading.answer, check_value(question, result.value))
    except AnswerRefused:
        return Understood(Reading.out_of_range, hint=_range_hint(question))


# -- what is not an answer ----------------------------------------------------------------------

_POSTPONE = re.compile(
    r"稍后再说|晚点再说|晚些再说|待会再说|待会儿再说|等会再说|等会儿再说|等一下再说|过会再说|过会儿再说|"
    r"回头再说|晚上再说|下午再说|一会再说|一会儿再说|现在没空|现在不方便|现在在忙|正在忙|我在忙|在开车|"
    r"晚点回复|稍后回复|晚点回答|稍后回答|等会回复|过会回复|没时间回答|改天再说|晚点聊|稍后再答"
)
_OPT_OUT = re.compile(
    r"不想再收到|不想收到|不要再发|别再发|不用再发|不要再问|别再问|不用再问|退订|取消随访|停止随访|"
    r"不想参加随访|不参加随访|不需要随访|不用随访|不要随访|不想随访|别随访|不再随访|关闭随访|以后别发|以后不要发"
)
#: "人工关节" and its kin are the operation, not a request for a person.
_OPERATION_WORDS = re.compile(r"人工(?:关节|髋|膝|晶体|耳蜗|瓣膜|心脏|肛门)")
_PERSON = re.compile(
    r"转人工|人工客服|人工服务|找人工|要人工|^人工$|真人|找护士|找医生|叫护士|护士电话|医生电话|打电话给我|给我打电话"
)


def digression_of(text: str) -> Digression | None:
    """What a message asks instead of answering: later, no more follow-up, or a person."""
    plain = _plain(_normalise(text))
    if _OPT_OUT.search(plain):
        return Digression.opt_out
    if _POSTPONE.search(plain):
        return Digression.postpone
    if _PERSON.search(_OPERATION_WORDS.sub("", plain)):
        return Digression.handoff
    return None


_QUESTION = re.compile(
    r"[吗嘛么][？?]?$|[？?]$|能不能|可不可以|可以不可以|要不要|需不需要|用不用|该不该|怎么办|怎么|什么时候|多久|多长时间|"
    r"几天|是否|能否|可以.{0,8}吗|能.{0,8}吗"
)


def is_question(text: str) -> bool:
    """The patient asks something ("能洗澡吗", "什么时候拆线") instead of answering."""
    return bool(_QUESTION.search(_normalise(text).strip()))


def yes_or_no(text: str) -> bool | None:
    """A plain yes or no to a confirmation ("确定", "不用了"); None when it is neither."""
    plain = _plain(_normalise(text))
    if re.fullmatch(
        r"(?:确定|确认|是|是的|对|嗯|嗯嗯|好|好的|可以|行|停止|不想了|确定不要|确定停止|同意)(?:吧|啊|的|了)?",
        plain,
    ):
        return True
    if re.fullmatch(
        r"(?:不|不用|不用了|算了|不了|继续|接着|我再想想|取消|没有|否|不确定|先不|不停|继续回答)(?:吧|啊|了)?",
        plain,
    ):
        return False
    return None
