"""Resident ID numbers typed in chat: masked in what is stored, whole again for the bot."""

from __future__ import annotations

import base64

from crm_backend.conversations.redaction import SEALED_KEY, seal_id_numbers, unsealed_text
from crm_backend.patients.validation import id_checksum_char
from crm_backend.protection import AesGcmProtector, parse_data_keys
from tests.support.api import KEY_A, LOOKUP_KEY

PROTECTOR = AesGcmProtector(parse_data_keys(f"a:{KEY_A}"), base64.b64decode(LOOKUP_KEY))


def valid_id(first17: str) -> str:
    return first17 + id_checksum_char(first17)


def test_valid_numbers_are_masked_and_come_back_whole() -> None:
    mine, mothers = valid_id("44030519880512123"), valid_id("11010119580214002")
    text = f"我的是{mine}，我妈的是 {mothers.lower()}"
    masked, sealed = seal_id_numbers(text, PROTECTOR)
    assert mine not in masked and mothers.lower() not in masked and len(sealed) == 2
    assert masked == f"我的是{mine[:4]}**********{mine[-4:]}，我妈的是 {mothers[:4]}**********{mothers[-4:]}"
    assert all(mine not in token for token in sealed)
    assert unsealed_text(masked, {SEALED_KEY: sealed}, PROTECTOR) == text


def test_other_long_numbers_and_plain_text_are_left_alone() -> None:
    bad_check = valid_id("44030519880512123")[:-1] + "0"
    if bad_check == valid_id("44030519880512123"):
        bad_check = bad_check[:-1] + "1"
    for text in ("你好", f"订单号 {bad_check}", "电话13800138000", "1234567890123456789012"):
        assert seal_id_numbers(text, PROTECTOR) == (text, [])
    assert unsealed_text("你好", None, PROTECTOR) == "你好"
