"""How patients name the family member they act for (帮我妈, 给孩子, 我老公), and how we name it back."""

from __future__ import annotations

from crm_backend.patients.models import PatientRelation

#: Chinese label per relationship, as shown next to a 就诊人's name.
RELATION_LABELS: dict[PatientRelation, str] = {
    PatientRelation.SELF: "本人",
    PatientRelation.CHILD: "子女",
    PatientRelation.PARENT: "父母",
    PatientRelation.SPOUSE: "配偶",
    PatientRelation.OTHER: "其他亲友",
}

#: Words that name a relationship. "我" alone is not one: "我想挂号" says nothing about who for.
_WORDS: dict[PatientRelation, tuple[str, ...]] = {
    PatientRelation.SELF: ("本人", "我自己", "自己", "给我挂", "帮我挂", "我本人"),
    PatientRelation.CHILD: (
        "孩子", "小孩", "儿子", "女儿", "宝宝", "宝贝", "娃", "闺女", "小朋友", "子女", "儿童",
    ),
    PatientRelation.PARENT: (
        "我妈", "妈妈", "母亲", "老妈", "我爸", "爸爸", "父亲", "老爸", "父母", "老人", "家里老人",
        "婆婆", "公公", "岳母", "岳父", "丈母娘", "老丈人",
    ),
    PatientRelation.SPOUSE: ("老公", "老婆", "爱人", "丈夫", "妻子", "媳妇", "配偶", "先生", "太太"),
    PatientRelation.OTHER: ("爷爷", "奶奶", "外公", "外婆", "姥姥", "姥爷", "朋友", "亲戚", "其他"),
}  # fmt: skip


def relation_in(text: str) -> PatientRelation | None:
    """The relationship a message names; the longest word wins ("家里老人" over "老人")."""
    best: tuple[int, PatientRelation] | None = None
    for relation, words in _WORDS.items():
        for word in words:
            if word in text and (best is None or len(word) > best[0]):
                best = (len(word), relation)
    return best[1] if best else None
