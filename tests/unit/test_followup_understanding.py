"""Free Chinese answers to check-in questions: numbers in words, ranges, negations, choices."""

from __future__ import annotations

from typing import Any

import pytest

from crm_backend.followups.plans import Choice, FlagRule, Question, QuestionType
from crm_backend.followups.understanding import (
    Digression,
    Reading,
    digression_of,
    is_question,
    numbers_in,
    read_answer,
    yes_or_no,
)

PAIN = Question(
    code="pain", text="今天伤口疼吗？请打分，0 分不痛，10 分最痛。", type=QuestionType.scale, unit="分"
)
TEMPERATURE = Question(
    code="temperature",
    text="今天最高体温是多少度？",
    type=QuestionType.number,
    unit="°C",
    minimum=35,
    maximum=42,
)
REDNESS = Question(code="redness", text="伤口发红吗？", type=QuestionType.yes_no)
FALL = Question(code="fall", text="出院以后有没有摔倒过？", type=QuestionType.yes_no)
WOUND = Question(
    code="wound",
    text="伤口有下面这些情况吗？",
    type=QuestionType.multiple_choice,
    choices=[
        Choice(code="red", text="伤口周围发红", synonyms=["红", "发红"]),
        Choice(code="swollen", text="伤口肿起来了", synonyms=["肿"]),
        Choice(code="discharge", text="伤口流水或流脓", synonyms=["流水", "渗液", "流脓"]),
    ],
)
SYMPTOMS = Question(
    code="symptoms",
    text="有没有恶心或呕吐？可以多选。",
    type=QuestionType.multiple_choice,
    choices=[
        Choice(code="nausea", text="恶心", synonyms=["反胃", "想吐"]),
        Choice(code="vomiting", text="呕吐", synonyms=["吐了", "吐"]),
    ],
)
NAUSEA = Question(
    code="nausea",
    text="有没有恶心或呕吐？",
    type=QuestionType.single_choice,
    choices=[
        Choice(code="none", text="没有", synonyms=["不恶心", "没吐"]),
        Choice(code="mild", text="有点恶心，但能吃能喝", synonyms=["有点恶心", "反胃"]),
        Choice(code="vomited", text="吐过，现在能喝水", synonyms=["吐了", "呕吐"]),
        Choice(code="persistent", text="一直吐，吃不下也喝不下", synonyms=["一直吐", "喝水都吐"]),
    ],
    flags=[FlagRule(flag="amber", any_of=["vomited"]), FlagRule(flag="red", any_of=["persistent"])],
)
FEELING = Question(
    code="feeling",
    text="总体感觉怎么样？",
    type=QuestionType.single_choice,
    choices=[
        Choice(code="good", text="挺好的", synonyms=["很好", "还行", "还可以"]),
        Choice(code="worse", text="比出院时差", synonyms=["更差", "不太好"]),
    ],
)
DANGER = Question(
    code="danger",
    text="有没有下面这些情况？",
    type=QuestionType.multiple_choice,
    choices=[
        Choice(code="breathless", text="突然气短、喘不上气", synonyms=["气短", "喘不上气"]),
        Choice(code="chest", text="胸痛或胸闷", synonyms=["胸痛", "胸闷"]),
        Choice(code="calf", text="一侧小腿肿胀或疼痛", synonyms=["小腿肿", "小腿痛"]),
    ],
)
CONCERNS = Question(code="concerns", text="还有什么想问的吗？", type=QuestionType.free_text)

ANSWERS: list[tuple[Question, str, Any]] = [
    # Pain scores: digits, words, ranges (the higher end), no pain.
    (PAIN, "5", 5),
    (PAIN, "有点疼，大概5分", 5),
    (PAIN, "五分", 5),
    (PAIN, "五六分", 6),
    (PAIN, "三四分吧", 4),
    (PAIN, "5到6分", 6),
    (PAIN, "6-7", 7),
    (PAIN, "十分", 10),
    (PAIN, "０", 0),
    (PAIN, "不疼", 0),
    (PAIN, "一点也不疼了", 0),
    (PAIN, "没有", 0),
    (PAIN, "4.5分", 5),
    (PAIN, "吃了2片止痛药，现在3分", 3),
    (PAIN, "术后第3天，还有7分", 7),
    # Temperatures: decimals in digits and words, 度 as the decimal point, ranges.
    (TEMPERATURE, "三十八度二", 38.2),
    (TEMPERATURE, "三十七度五", 37.5),
    (TEMPERATURE, "38度5", 38.5),
    (TEMPERATURE, "体温38.6", 38.6),
    (TEMPERATURE, "36.8度", 36.8),
    (TEMPERATURE, "三十七点三", 37.3),
    (TEMPERATURE, "37度", 37.0),
    (TEMPERATURE, "三十八九度", 39.0),
    (TEMPERATURE, "38到39度之间", 39.0),
    (TEMPERATURE, "３７．２", 37.2),
    (TEMPERATURE, "昨天38.6，今天37.5", 38.6),
    # "N度多": more than N by an unsaid part, read as N.5 (a 38.5 threshold is met: over-triage).
    (TEMPERATURE, "38度多", 38.5),
    (TEMPERATURE, "三十八度多", 38.5),
    (TEMPERATURE, "38多度", 38.5),
    (TEMPERATURE, "37度多", 37.5),
    (PAIN, "4分多", 5),
    # Yes or no, negations first.
    (REDNESS, "没有", False),
    (REDNESS, "不红", False),
    (REDNESS, "没红", False),
    (REDNESS, "有", True),
    (REDNESS, "有一点", True),
    (REDNESS, "红了", True),
    (REDNESS, "伤口有点红但不流水", True),
    (REDNESS, "不太红", True),
    (REDNESS, "是的，有点红", True),
    (FALL, "没摔", False),
    (FALL, "摔过一次", True),
    (FALL, "没有，一直很小心", False),
    # Multiple choice: numbers, words, several at once, none.
    (WOUND, "1和3", ["red", "discharge"]),
    (WOUND, "1 3", ["red", "discharge"]),
    (WOUND, "13", ["red", "discharge"]),
    (WOUND, "2", ["swollen"]),
    (WOUND, "第二个", ["swollen"]),
    (WOUND, "伤口有点红但不流水", ["red"]),
    (WOUND, "有点红，也有点肿", ["red", "swollen"]),
    (WOUND, "不红不肿", []),
    (WOUND, "都没有", []),
    (WOUND, "没有", []),
    (SYMPTOMS, "恶心，没吐", ["nausea"]),
    (SYMPTOMS, "又恶心又想吐", ["nausea"]),
    (SYMPTOMS, "吐了两次", ["vomiting"]),
    (DANGER, "小腿有点肿", ["calf"]),
    (DANGER, "有点胸闷", ["chest"]),
    (DANGER, "没有胸痛也没有气短", []),
    (DANGER, "没有，谢谢", []),
    # A symptom beside a "none" is the answer; breathlessness in any words is the breathless choice.
    (DANGER, "没有胸痛，就是有点喘", ["breathless"]),
    (DANGER, "都没有，就是有点喘", ["breathless"]),
    (DANGER, "有点喘", ["breathless"]),
    (DANGER, "憋得慌", ["breathless"]),
    (DANGER, "走两步就上不来气", ["breathless"]),
    (DANGER, "小腿肿，有点气急", ["breathless", "calf"]),
    # Single choice: number, words, the more worrying of two.
    (NAUSEA, "2", "mild"),
    (NAUSEA, "恶心，没吐", "mild"),
    (NAUSEA, "不恶心", "none"),
    (NAUSEA, "没吐，就是有点恶心", "mild"),
    (NAUSEA, "没有", "none"),
    (NAUSEA, "吐了", "vomited"),
    (NAUSEA, "一直吐，喝水都吐", "persistent"),
    (NAUSEA, "2或者4", "persistent"),
    (FEELING, "还行", "good"),
    (FEELING, "不太好", "worse"),
    # Free text is kept as written.
    (CONCERNS, "没有，谢谢", "没有，谢谢"),
]


@pytest.mark.parametrize(("question", "text", "value"), ANSWERS, ids=[f"{q.code}:{t}" for q, t, _ in ANSWERS])
def test_free_answers_are_understood(question: Question, text: str, value: Any) -> None:
    understood = read_answer(question, text)
    assert understood.reading is Reading.answer, understood.hint
    assert understood.value == value


UNCLEAR: list[tuple[Question, str, str]] = [
    (PAIN, "疼得厉害", "打个分"),
    (PAIN, "很疼", "打个分"),
    (PAIN, "有一点疼", "0 到 10"),
    (PAIN, "嗯", "0 到 10"),
    (TEMPERATURE, "没量", "35 到 42"),
    (TEMPERATURE, "有点烧", "35 到 42"),
    (REDNESS, "还行", "有"),
    (REDNESS, "不知道", "有"),
    (FALL, "好多了", "有"),
    (WOUND, "还行", "序号"),
    (NAUSEA, "不清楚", "序号"),
    (NAUSEA, "今天天气不错", "序号"),
    # "None" only when every statement is accounted for: something else said is asked about.
    (DANGER, "没有胸痛，就是有点头晕", "“有点头晕”"),
    (DANGER, "都没有，就是头晕", "“头晕”"),
    (SYMPTOMS, "没吐，就是肚子胀", "“肚子胀”"),
    (DANGER, "嗯", "序号"),
]


@pytest.mark.parametrize(("question", "text", "hint"), UNCLEAR, ids=[f"{q.code}:{t}" for q, t, _ in UNCLEAR])
def test_unclear_answers_are_asked_again_with_a_hint(question: Question, text: str, hint: str) -> None:
    understood = read_answer(question, text)
    assert understood.reading is Reading.unclear
    assert understood.value is None
    assert hint in understood.hint


OUT_OF_RANGE: list[tuple[Question, str, str]] = [
    (PAIN, "12分", "0 到 10"),
    (PAIN, "15", "0 到 10"),
    (TEMPERATURE, "380", "35 到 42"),
    (TEMPERATURE, "四十五度", "35 到 42"),
    (TEMPERATURE, "3", "35 到 42"),
    (TEMPERATURE, "三十多度", "35 到 42"),
    (WOUND, "5", "1 到 3"),
    (NAUSEA, "7", "1 到 4"),
]


@pytest.mark.parametrize(
    ("question", "text", "hint"), OUT_OF_RANGE, ids=[f"{q.code}:{t}" for q, t, _ in OUT_OF_RANGE]
)
def test_out_of_range_answers_name_the_range(question: Question, text: str, hint: str) -> None:
    understood = read_answer(question, text)
    assert understood.reading is Reading.out_of_range
    assert hint in understood.hint


@pytest.mark.parametrize(
    ("text", "numbers"),
    [
        ("三十八度二", [38.2]),
        ("五六分", [6.0]),
        ("疼了3天，今天5分", [5.0]),
        ("吃了两片药", []),
        ("有一点疼", []),
        ("一直疼", []),
        ("十二", [12.0]),
        ("二十", [20.0]),
    ],
)
def test_numbers_in_words_and_digits(text: str, numbers: list[float]) -> None:
    assert numbers_in(text) == numbers


@pytest.mark.parametrize(
    ("text", "digression"),
    [
        ("稍后再说", Digression.postpone),
        ("现在在忙，晚点回复", Digression.postpone),
        ("不想再收到随访了", Digression.opt_out),
        ("别再发了，退订", Digression.opt_out),
        ("人工", Digression.handoff),
        ("转人工", Digression.handoff),
        ("我要找护士", Digression.handoff),
        ("人工关节这几天有点疼", None),
        ("5分", None),
        ("没有", None),
    ],
)
def test_what_is_not_an_answer(text: str, digression: Digression | None) -> None:
    assert digression_of(text) == digression


@pytest.mark.parametrize(
    ("text", "asks"),
    [("能洗澡吗", True), ("什么时候拆线？", True), ("伤口可以碰水吗", True), ("没有", False), ("5分", False)],
)
def test_a_question_of_the_patients_own(text: str, asks: bool) -> None:
    assert is_question(text) is asks


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("确定", True),
        ("是的", True),
        ("确定停止", True),
        ("继续", False),
        ("不用了", False),
        ("算了", False),
        ("再说吧", None),
    ],
)
def test_confirmation(text: str, answer: bool | None) -> None:
    assert yes_or_no(text) is answer
