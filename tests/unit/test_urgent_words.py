"""Urgent clinical words: found where a patient names them, not where the patient plainly denies
them; the list is data with a version, and a broken file is refused rather than read as empty."""

from __future__ import annotations

from pathlib import Path

import pytest

from crm_backend.conversations.urgent_words import DATA_FILE, UrgentWords, current, load

WORDS = current()


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("我胸痛得厉害", ["胸痛"]),
        ("我爸突然 呼吸 困难，嘴唇发紫", ["呼吸困难"]),
        ("孩子抽搐了怎么办", ["抽搐"]),
        ("我妈昏迷了叫不醒", ["昏迷", "叫不醒"]),
        ("手术后大出血", ["大出血"]),
        ("活着没意思，想死", ["想死"]),
        # Negated where the patient plainly denies it ...
        ("没有胸痛，就是有点咳嗽", []),
        ("无明显胸痛", []),
        ("没有什么明显胸痛", []),
        ("否认胸痛", []),
        ("我不胸痛", []),
        # ... and only there: anything else leans to over-triage.
        ("没有发烧，胸痛", ["胸痛"]),
        ("没有胸痛，但是呼吸困难", ["呼吸困难"]),
        ("有没有胸痛都要挂心内科吗", ["胸痛"]),
        ("胸痛没有好转", ["胸痛"]),
        ("我不想死，救救我", ["想死"]),  # never negated: may still be a cry for help
        ("没有胸痛吗？我胸痛了两天", ["胸痛"]),  # one naming is enough
        ("我想挂皮肤科", []),
    ],
)
def test_find(text: str, found: list[str]) -> None:
    assert WORDS.find(text) == found


def test_the_mark_names_the_words_and_the_list_version() -> None:
    assert WORDS.mark("胸痛") == {"words": ["胸痛"], "version": WORDS.version}
    assert WORDS.mark("没有胸痛") is None


def test_the_shipped_list_has_a_version_and_the_brief_words() -> None:
    assert WORDS.version
    for word in ("胸痛", "呼吸困难", "昏迷", "大出血", "抽搐", "想死"):
        assert word in WORDS.words
    assert "clinicians" in DATA_FILE.read_text(encoding="utf-8")


def test_a_replacement_list_is_read_from_its_file(tmp_path: Path) -> None:
    path = tmp_path / "words.yml"
    path.write_text('version: "t1"\nwords: [头晕]\nnegations: [没]\n', encoding="utf-8")
    words = load(path)
    assert (words.version, words.find("头晕得站不住"), words.find("没头晕")) == ("t1", ["头晕"], [])
    assert words.find("胸痛") == []


@pytest.mark.parametrize(
    "data",
    [
        {"words": ["胸痛"]},  # no version
        {"version": "x", "words": []},
        {"version": "x", "words": "胸痛"},
        {"version": "x", "words": ["胸痛", ""]},
    ],
)
def test_a_broken_list_is_refused(data: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        UrgentWords.of(data)
