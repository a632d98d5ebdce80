"""Numbered options stand in for buttons; consent needs a clear yes or no."""

from __future__ import annotations

import pytest

from crm_backend.consent.service import ConsentAnswer, read_answer
from crm_backend.conversations.bot_gateway import BotReply, Button
from crm_backend.conversations.choices import parse_number, render


def test_buttons_are_rendered_as_a_numbered_list() -> None:
    text = render(
        BotReply("您是想问候一下吗？", [Button("打招呼", "/greet"), Button("都不是", "/out_of_scope")])
    )
    assert text.splitlines() == ["您是想问候一下吗？", "1. 打招呼", "2. 都不是", "（请回复数字选择）"]


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("1", 1),
        (" 2 ", 2),
        ("２", 2),
        ("第3个", 3),
        ("3.", 3),
        ("10", 10),
        ("1个苹果", None),
        ("一", None),
        ("", None),
        ("123", None),
    ],
)
def test_parse_number(text: str, number: int | None) -> None:
    assert parse_number(text) == number


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("同意", ConsentAnswer.GRANT),
        ("我同意。", ConsentAnswer.GRANT),
        ("不同意", ConsentAnswer.DECLINE),
        ("不同意！", ConsentAnswer.DECLINE),
        ("撤回同意", ConsentAnswer.WITHDRAW),
        ("我同意你说的但是不想", None),
        ("头疼挂什么科", None),
    ],
)
def test_consent_answers(text: str, answer: ConsentAnswer | None) -> None:
    assert read_answer(text) is answer
