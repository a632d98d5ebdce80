"""The red-flag screen (crm_backend/triage/red_flags.py, red_flag_rules.py, who_is_ill.py and
red_flags.yml): every rule fires on a patient's own words, and negation, time, hypotheticals and
who is ill change the verdict.

These sentences are written for the tests; the evaluation sets in bench/triage_eval/ are separate
and never used to set these expectations.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from crm_backend.triage.red_flag_rules import RULES_FILE, load_rules, rule_book
from crm_backend.triage.red_flags import RedFlagResult, ScreenContext, Status, screen
from crm_backend.triage.who_is_ill import Relation

# One message per rule, in a patient's words: the rule must fire.
POSITIVE = [
    ("cardiac_chest_pain", "我爸胸口痛，冒了一身冷汗"),
    ("cardiac_chest_pain", "胸口疼，一直疼到左胳膊"),
    ("stroke_signs", "我妈突然口角歪斜，说话含糊"),
    ("stroke_signs", "老爷子右边手脚没力气了"),
    ("severe_breathlessness", "我喘不上气，嘴唇发紫"),
    ("choking_airway", "老人吃汤圆噎住了，说不出话"),
    ("child_choking", "宝宝吃瓜子呛到了，咳个不停"),
    ("anaphylaxis", "吃了螃蟹以后嗓子发紧，舌头也肿了"),
    ("heavy_bleeding", "腿上划了个口子，血怎么也止不住"),
    ("vomiting_or_coughing_blood", "我爸今天吐血了"),
    ("unresponsive", "我外婆昏迷了"),
    ("seizure", "我弟弟突然抽搐，口吐白沫"),
    ("febrile_convulsion", "女儿高烧到39度，刚才抽搐了"),
    ("suicidal_intent", "我不想活了"),
    ("poisoning_or_overdose", "我爸误喝了农药"),
    ("child_swallowed_medicine", "孩子偷吃了奶奶的降压药"),
    ("severe_burn", "老公被热油烫伤了整个脸"),
    ("infant_fever", "宝宝出生二十五天，发烧了"),
    ("meningitis_signs", "发烧，脖子硬得低不下头"),
    ("sudden_severe_headache", "突然头痛欲裂"),
    ("pregnancy_bleeding_or_pain", "怀孕十周，今天见红了"),
    ("post_operative_warning", "我妈做完手术第二天，伤口裂开了"),
    ("leg_clot_with_breathlessness", "我爸一条腿肿得厉害，这两天还总是气短"),
    ("child_dehydration", "孩子发烧两天，不吃不喝，精神很差"),
    ("diabetic_emergency", "我有糖尿病，嘴里有烂苹果味"),
    ("testicular_pain", "儿子睾丸突然疼得厉害"),
    ("eye_injury", "洁厕灵溅进眼睛了"),
    ("drowning", "孩子游泳溺水了"),
    ("electric_shock", "我爸触电了"),
    ("major_trauma", "老公出车祸了"),
    ("severe_abdominal_pain", "肚子疼得在地上打滚"),
    ("urinary_retention", "一整天尿不出来，小肚子胀"),
    ("venomous_bite", "在山上被蛇咬了"),
    ("heatstroke", "中暑了，体温40度"),
    ("palpitations_with_danger_signs", "心慌得厉害，差点晕倒"),
    ("shock_signs", "脸色苍白，浑身冷汗，手脚冰凉"),
    ("distress_call", "救命啊，我老公快不行了"),
]


@pytest.mark.parametrize(("rule_id", "text"), POSITIVE)
def test_each_rule_fires_on_a_patients_words(rule_id: str, text: str) -> None:
    result = screen(text)
    assert rule_id in result.rule_ids
    assert result.emergency


def test_every_rule_has_a_positive_case() -> None:
    assert {rule.id for rule in rule_book().rules} == {rule_id for rule_id, _ in POSITIVE}


# ── negation ─────────────────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize(
    "text",
    [
        "没有胸痛，也不出汗",
        "胸不痛，也没出冷汗，就是有点累",
        "宝宝两个月，不发烧，就是鼻塞",
        "没有抽搐过，睡觉老惊醒",
        "我没有想过自杀，就是压力大",
        "嘴不歪，说话也清楚，就是手麻",
        "胸痛、出汗都没有，想做个体检",
        "孩子不吃不喝的情况没有，精神很好",
        "宝宝一个月，木有发烧，就是鼻塞",  # colloquial and dialect negations
        "胸口莫得痛，也冇出汗",
    ],
)
def test_a_negated_finding_raises_no_flag(text: str) -> None:
    result = screen(text)
    assert result.flags == ()
    assert any(mention.status is Status.NEGATED for mention in result.set_aside)


@pytest.mark.parametrize(
    ("text", "rule_id"),
    [
        ("没发烧，但是一直抽搐", "seizure"),
        ("不小心被开水烫伤了一大片", "severe_burn"),
        ("孩子怎么叫都叫不醒", "unresponsive"),
        ("不知道怎么回事，我妈突然说不出话了", "stroke_signs"),
        ("胸口疼得没有缓解，还出冷汗", "cardiac_chest_pain"),
    ],
)
def test_a_negation_reaches_only_its_own_finding(text: str, rule_id: str) -> None:
    assert rule_id in screen(text).rule_ids


# ── time ─────────────────────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize(
    "text",
    [
        "上个月胸口闷过一次现在好了",
        "去年中风过，现在走路挺好的，想配药",
        "孩子小时候抽搐过一次，现在八岁了",
        "几年前割过腕，现在在看心理门诊",
        "以前被车撞过，现在阴天腿疼",
        "上周孩子抽了一次，医生诊断是热性惊厥，现在要复查",  # a diagnosis made is history too
    ],
)
def test_a_finding_long_past_raises_no_flag(text: str) -> None:
    result = screen(text)
    assert result.flags == ()
    assert any(mention.status is Status.PAST for mention in result.set_aside)


@pytest.mark.parametrize(
    ("text", "rule_id"),
    [
        ("昨天开始胸口疼，一直出冷汗", "cardiac_chest_pain"),
        ("以前得过心梗，现在又胸口疼出冷汗", "cardiac_chest_pain"),
        ("上个月晕倒过，今天又晕倒了", "unresponsive"),
        ("刚才抽搐了两分钟，现在停了", "seizure"),  # a seizure that stopped still needs emergency care
        ("上周做的手术，今天伤口裂开了", "post_operative_warning"),  # the operation is context, not a flag
        ("我爸以前有高血压，胸口疼出冷汗", "cardiac_chest_pain"),  # a history, then now
        ("去年中风过。我妈胸口疼，满头大汗", "cardiac_chest_pain"),
    ],
)
def test_a_finding_now_raises_its_flag(text: str, rule_id: str) -> None:
    assert rule_id in screen(text).rule_ids


def test_bleeding_that_has_stopped_raises_no_flag() -> None:
    assert screen("刚才流鼻血流了好多，现在止住了").flags == ()
    assert "heavy_bleeding" in screen("刚才流鼻血流了好多，到现在还止不住").rule_ids


# ── hypotheticals and general questions ─────────────────────────────────────────────────────────


@pytest.mark.parametrize(
    "text",
    [
        "如果发烧怎么办",
        "万一孩子抽搐了，我该怎么做",
        "要是被蛇咬了先做什么",
        "会不会中风啊，我血压有点高",
        "中风有什么症状",
        "担心孩子发烧会抽搐",
        "怎么预防老人摔倒骨折",
        "心梗和心绞痛怎么区分",
        "怎么判断是不是脑梗",
        "孩子发烧多少度会抽搐",
        "脑出血会有什么后遗症",
    ],
)
def test_a_hypothetical_or_general_question_raises_no_flag(text: str) -> None:
    result = screen(text)
    assert result.flags == ()
    assert any(mention.status is Status.HYPOTHETICAL for mention in result.set_aside)


def test_a_general_question_about_a_kind_of_person_is_not_about_someone() -> None:
    assert screen("孩子高热惊厥需要注意什么").flags == ()
    assert "febrile_convulsion" in screen("我家孩子高热惊厥，需要注意什么").rule_ids
    assert "febrile_convulsion" in screen("孩子高热惊厥了，需要注意什么").rule_ids


def test_a_worry_about_what_is_happening_now_still_flags() -> None:
    assert "cardiac_chest_pain" in screen("我爸胸口疼还出冷汗，会不会是心梗").rule_ids
    assert "cardiac_chest_pain" in screen("胸口疼出冷汗了，和胃疼有什么区别").rule_ids
    assert "cardiac_chest_pain" in screen("我爸胸口疼，会不会是心梗").rule_ids  # a suspicion, not the future
    assert "stroke_signs" in screen("恐怕是中风了").rule_ids
    assert "febrile_convulsion" in screen("孩子发烧抽搐了，如果送医院要挂什么科").rule_ids


# ── who is ill ───────────────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize(
    ("text", "relation", "age_months"),
    [
        ("我爸胸口疼出冷汗", Relation.FATHER, None),
        ("我妈突然嘴歪了", Relation.MOTHER, None),
        ("老公突然抽搐", Relation.SPOUSE, None),
        ("孩子三个月，发烧了", Relation.INFANT, 3),
        ("宝宝40天，身上发烫", Relation.INFANT, 1),
        ("女儿才一个半月，烧到38度", Relation.INFANT, 1),
        ("我胸口疼得厉害，出冷汗", Relation.SELF, None),
        ("我爷爷昏倒了", Relation.GRANDPARENT, None),
        ("儿子五岁，误喝了消毒水", Relation.CHILD, 60),
        ("发烧了，宝宝两个月", Relation.INFANT, 2),  # a child named after the finding
        ("我胸口疼，出冷汗，我妈让我问问", Relation.SELF, None),  # an adult named after it only passes on
        ("孩子他爸胸口疼出冷汗", Relation.SPOUSE, None),
        ("我奶奶80岁了，突然说不出话", Relation.GRANDPARENT, 960),
        ("我妈说我爸胸口疼出冷汗", Relation.FATHER, None),
    ],
)
def test_who_is_ill(text: str, relation: Relation, age_months: int | None) -> None:
    result = screen(text)
    assert result.emergency
    assert result.patient.relation is relation
    assert result.patient.age_months == age_months


def test_fever_is_a_red_flag_for_an_infant_under_three_months_only() -> None:
    assert "infant_fever" in screen("孩子三个月，今天发烧了").rule_ids
    assert "infant_fever" in screen("宝宝40天，体温38.2").rule_ids
    assert "infant_fever" in screen("新生儿发烧").rule_ids
    assert "infant_fever" in screen("宝宝两个月，体温三十八度五").rule_ids
    assert "infant_fever" in screen("宝宝才六周，量了一下38.1").rule_ids  # a bare 38.1 is a temperature
    assert screen("孩子三岁，发烧38度5").flags == ()
    assert screen("宝宝八个月，有点发烧").flags == ()
    assert screen("孩子发烧三天了").flags == ()  # 三天 is how long, not the child's age


def test_the_patients_record_supplies_what_the_message_does_not_say() -> None:
    assert screen("发烧38度").flags == ()
    assert "infant_fever" in screen("发烧38度", context=ScreenContext(age_months=1)).rule_ids
    assert screen("肚子疼").flags == ()
    assert "pregnancy_bleeding_or_pain" in screen("肚子疼", context=ScreenContext(pregnant=True)).rule_ids
    assert "post_operative_warning" in screen("发高烧", context=ScreenContext(post_op=True)).rule_ids


def test_pregnancy_in_the_message_turns_bleeding_into_a_red_flag() -> None:
    assert screen("牙龈出血").flags == ()
    assert "pregnancy_bleeding_or_pain" in screen("我老婆怀孕五个月，下面出血了").rule_ids
    assert screen("没怀孕，下面有点出血").flags == ()


# ── mixed messages, spans, odd input ─────────────────────────────────────────────────────────────


def test_a_mixed_message_flags_only_what_is_present() -> None:
    result = screen("没有胸痛，但是我爸突然说话不清楚")
    assert result.rule_ids == ("stroke_signs",)
    assert result.patient.relation is Relation.FATHER
    assert [m.text for m in result.set_aside if m.status is Status.NEGATED] == ["胸痛"]


def test_mentions_point_into_the_original_text() -> None:
    text = "ＨＩ，我爸胸口疼，出冷汗！"  # full-width letters and punctuation
    result = screen(text)
    flag = result.flags[0]
    assert flag.rule_id == "cardiac_chest_pain"
    for mention in flag.mentions:
        assert text[mention.start : mention.end] == mention.text
    assert {m.term for m in flag.mentions} == {"chest_pain", "cold_sweat"}


def test_an_explanation_in_the_rules_cancels_a_finding() -> None:
    assert "vomiting_or_coughing_blood" in screen("这两天大便发黑").rule_ids
    assert screen("在吃补铁的药，这两天大便发黑").flags == ()


def test_common_misspellings_are_read_as_meant() -> None:
    result = screen("宝宝发烧惊觉了")
    assert "febrile_convulsion" in result.rule_ids
    mentions = {(m.text, m.start) for flag in result.flags for m in flag.mentions}
    assert ("惊觉", 4) in mentions  # the patient's own characters, at their own place
    assert "stroke_signs" in screen("我爸好像中疯了").rule_ids
    assert screen("头晕到现在，想挂神经内科").flags == ()


def test_what_will_not_stop_is_bleeding_only_when_blood_is_named() -> None:
    assert screen("我拉肚子止不住").flags == ()
    assert screen("咳嗽止不住，晚上睡不着").flags == ()
    assert "heavy_bleeding" in screen("流鼻血两个小时了，止不住").rule_ids


def test_a_cramp_is_not_a_seizure() -> None:
    assert screen("晚上小腿抽筋了").flags == ()
    assert "seizure" in screen("孩子突然抽筋了，眼睛往上翻").rule_ids


@pytest.mark.parametrize("text", ["", "   ", "。。。", "x" * 5000, "谢谢"])
def test_odd_input_flags_nothing(text: str) -> None:
    result = screen(text)
    assert result.flags == ()
    assert result.version == rule_book().version


def test_every_result_carries_the_rule_version_and_the_call_to_action() -> None:
    result = screen("我爸触电了")
    assert result.version == rule_book().version
    assert "120" in result.call_to_action
    assert all(flag.advice for flag in result.flags)


# ── the rules file ──────────────────────────────────────────────────────────────────────────────


def test_the_rules_file_loads_with_a_version_and_awaits_clinicians() -> None:
    book = load_rules()
    assert book.version
    assert book.date
    assert "clinicians" in book.status
    assert "TO BE CONFIRMED BY CLINICIANS" in RULES_FILE.read_text(encoding="utf-8")
    assert all(rule.advice and rule.name for rule in book.rules)


def test_a_rule_naming_an_unknown_term_is_refused(tmp_path: Path) -> None:
    broken = tmp_path / "rules.yml"
    broken.write_text(
        'version: "1"\ndate: "2026-12-05"\nstatus: draft\ncall_to_action: "120"\n'
        "terms:\n  chest_pain: [胸痛]\n"
        "rules:\n  - {id: x, name: x, advice: x, match: [[chest_pain, sweating]]}\n",
        encoding="utf-8",
    )
    with pytest.raises(ValueError, match="sweating"):
        load_rules(broken)


def test_a_spelling_correction_that_changes_the_length_is_refused(tmp_path: Path) -> None:
    uneven = tmp_path / "rules.yml"
    uneven.write_text(
        'version: "1"\ndate: "2026-12-05"\nstatus: draft\ncall_to_action: "120"\n'
        "spelling:\n  晕到: 晕倒了\n"
        "terms:\n  chest_pain: [胸痛]\nrules:\n  - {id: x, name: x, advice: x, match: [[chest_pain]]}\n",
        encoding="utf-8",
    )
    with pytest.raises(ValueError, match="length"):
        load_rules(uneven)


def test_a_rules_file_without_a_version_is_refused(tmp_path: Path) -> None:
    unversioned = tmp_path / "rules.yml"
    unversioned.write_text(
        'version: ""\ndate: "2026-12-05"\nstatus: draft\ncall_to_action: "120"\n'
        "terms:\n  chest_pain: [胸痛]\nrules:\n  - {id: x, name: x, advice: x, match: [[chest_pain]]}\n",
        encoding="utf-8",
    )
    with pytest.raises(ValueError, match="version"):
        load_rules(unversioned)


def test_a_result_is_stored_and_read_back_whole() -> None:
    """Every triage decision is stored with its rule version for staff to review."""
    result = screen("我爸胸口疼出冷汗，没有发烧")
    stored = result.model_dump_json()
    assert RedFlagResult.model_validate_json(stored) == result
    assert f'"version":"{rule_book().version}"' in stored
    assert '"status":"negated"' in stored
