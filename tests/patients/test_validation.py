"""Pure validation and masking: resident ID checksum, ID/birth date/sex agreement, phone formats."""

from __future__ import annotations

from datetime import date

import pytest

from crm_backend.patients import validation as v

TODAY = date(2026, 11, 22)


@pytest.mark.parametrize(
    "number",
    [
        "11010519491231002X",  # the GB 11643 standard's own example
        "11010519491231002x",  # lower-case x is accepted and normalised
        "440305201506011235",
        "440305198002154561",
        "3201 0619 8811 1100 14",  # spaces as people type them
    ],
)
def test_valid_resident_ids(number: str):
    assert v.check_resident_id(number, today=TODAY) is None


@pytest.mark.parametrize(
    ("number", "message"),
    [
        ("110105194912310021", v.MSG_ID_CHECKSUM),  # last character wrong
        ("110105194912310029", v.MSG_ID_CHECKSUM),
        ("440305201506011236", v.MSG_ID_CHECKSUM),
        ("440305201506011253", v.MSG_ID_CHECKSUM),  # two digits swapped
        ("11010519491231002", v.MSG_ID_FORMAT),  # 17 characters
        ("1101051949123100211", v.MSG_ID_FORMAT),  # 19 characters
        ("X10105194912310021", v.MSG_ID_FORMAT),
        ("110105491231002", v.MSG_ID_FORMAT),  # the old 15-digit card
        ("", v.MSG_ID_FORMAT),
        ("110105194902300025", v.MSG_ID_DATE),  # 30 February
        ("110105203001010020", v.MSG_ID_DATE),  # born in the future
        ("110105189912310025", v.MSG_ID_DATE),  # before 1900
    ],
)
def test_invalid_resident_ids(number: str, message: str):
    assert v.check_resident_id(number, today=TODAY) == message


def test_birth_date_inside_the_id_must_match():
    assert v.check_birth_date_matches("11010519491231002X", date(1949, 12, 31)) is None
    assert v.check_birth_date_matches("11010519491231002X", date(1949, 12, 30)) == v.MSG_BIRTH_MISMATCH
    assert v.check_birth_date_matches("11010519491231002X", date(1994, 12, 31)) == v.MSG_BIRTH_MISMATCH


def test_sex_digit_must_match_when_given():
    assert v.check_sex_matches("11010519491231002X", "F") is None  # 17th digit 2: even, female
    assert v.check_sex_matches("11010519491231002X", "M") == v.MSG_SEX_MISMATCH
    assert v.check_sex_matches("440305201506011235", "M") is None  # 17th digit 3: odd, male
    assert v.check_sex_matches("440305201506011235", "F") == v.MSG_SEX_MISMATCH
    assert v.check_sex_matches("440305201506011235", None) is None


@pytest.mark.parametrize(
    "phone", ["13812345678", "19912345678", "15000000000", "138 1234 5678", "138-1234-5678", "+8613812345678"]
)
def test_valid_mobile_phones(phone: str):
    assert v.check_mobile_phone(phone) is None


@pytest.mark.parametrize(
    "phone",
    [
        "12812345678",
        "10012345678",
        "1381234567",
        "138123456789",
        "23812345678",
        "1381234567a",
        "",
        "010-12345678",
    ],
)
def test_invalid_mobile_phones(phone: str):
    assert v.check_mobile_phone(phone) == v.MSG_PHONE_FORMAT


def test_messages_are_chinese_and_never_echo_the_value():
    message = v.check_resident_id("110105194912310021", today=TODAY)
    assert message is not None and "身份证" in message and "110105" not in message
    assert "手机号" in (v.check_mobile_phone("12345") or "")


def test_masks():
    assert v.mask_phone("13812341234") == "138****1234"
    assert v.mask_id_number("440305201506011235") == "4403**********1235"
    assert v.mask_card_number("A000123456") == "****3456"
