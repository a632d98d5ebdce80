"""Pure checks of what a patient types for a 就诊人: each returns None when fine, else a Chinese message.

The messages are shown to patients in chat, so they say what to fix, never echo the value, and never
mention internals. Normalisers strip what people commonly add (spaces, dashes, +86) so that the same
number always gives the same keyed hash.
"""

from __future__ import annotations

import re
from datetime import date

#: GB 11643-1999: weights of the first 17 digits, and the check character for (sum mod 11).
ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK_CHARS = "10X98765432"

_ID_FORMAT = re.compile(r"^\d{17}[\dX]$")
_MOBILE_FORMAT = re.compile(r"^1[3-9]\d{9}$")
_CARD_FORMAT = re.compile(r"^[0-9A-Z]{4,32}$")
_SEPARATORS = re.compile(r"[\s\-]")

SEXES = ("M", "F")
EARLIEST_BIRTH = date(1900, 1, 1)

MSG_ID_FORMAT = "身份证号应为18位，前17位是数字，最后一位是数字或字母X，请核对后重新输入。"
MSG_ID_DATE = "身份证号中的出生日期不正确，请核对后重新输入。"
MSG_ID_CHECKSUM = "身份证号校验不通过，可能有数字输错了，请核对后重新输入。"
MSG_BIRTH_MISMATCH = "出生日期与身份证号不一致，请核对后重新输入。"
MSG_SEX_MISMATCH = "性别与身份证号不一致，请核对后重新输入。"
MSG_PHONE_FORMAT = "手机号格式不正确，请输入11位中国大陆手机号，例如 13812345678。"
MSG_BIRTH_RANGE = "出生日期不正确，请按“1990-01-31”的格式输入真实的出生日期。"
MSG_NAME = "请输入就诊人的真实姓名（不超过32个字）。"
MSG_SEX = "请选择就诊人的性别：男或女。"
MSG_CARD_FORMAT = "就诊卡号格式不正确，应为4到32位数字或字母，请核对后重新输入。"
MSG_ID_OR_CARD = "请提供就诊人的身份证号或就诊卡号，二者至少填写一项。"


def normalise_id_number(value: str) -> str:
    """Upper-case X and no separators, so 'x' and 'X' hash the same."""
    return _SEPARATORS.sub("", value).upper()


def normalise_phone(value: str) -> str:
    """Digits only, without the +86 / 0086 country prefix."""
    digits = re.sub(r"[\s\-()（）]", "", value)
    for prefix in ("+86", "0086"):
        if digits.startswith(prefix):
            digits = digits[len(prefix) :]
    if len(digits) == 13 and digits.startswith("86"):
        digits = digits[2:]
    return digits


def normalise_card_number(value: str) -> str:
    return _SEPARATORS.sub("", value).upper()


def id_checksum_char(first17: str) -> str:
    """The GB 11643 check character for 17 digits."""
    total = sum(int(d) * w for d, w in zip(first17, ID_WEIGHTS, strict=True))
    return ID_CHECK_CHARS[total % 11]


def birth_date_of(id_number: str) -> date | None:
    """The birth date encoded in positions 7-14, or None if it is not a real date."""
    try:
        return date(int(id_number[6:10]), int(id_number[10:12]), int(id_number[12:14]))
    except ValueError:
        return None


def sex_of(id_number: str) -> str:
    """Digit 17 is odd for men, even for women."""
    return "M" if int(id_number[16]) % 2 else "F"


def check_resident_id(value: str, *, today: date | None = None) -> str | None:
    """18-character resident ID: format, a real birth date not in the future, and the check character."""
    number = normalise_id_number(value)
    if not _ID_FORMAT.match(number):
        return MSG_ID_FORMAT
    born = birth_date_of(number)
    if born is None or born < EARLIEST_BIRTH or born > (today or date.today()):
        return MSG_ID_DATE
    if id_checksum_char(number[:17]) != number[17]:
        return MSG_ID_CHECKSUM
    return None


def check_birth_date_matches(id_number: str, birth_date: date) -> str | None:
    """The birth date the patient gave must be the one inside their ID number."""
    return None if birth_date_of(normalise_id_number(id_number)) == birth_date else MSG_BIRTH_MISMATCH


def check_sex_matches(id_number: str, sex: str | None) -> str | None:
    """Only checked when a sex was given (otherwise it is taken from the ID number)."""
    if sex is None:
        return None
    return None if sex_of(normalise_id_number(id_number)) == sex else MSG_SEX_MISMATCH


def check_mobile_phone(value: str) -> str | None:
    """Mainland mobile: 11 digits starting 13-19."""
    return None if _MOBILE_FORMAT.match(normalise_phone(value)) else MSG_PHONE_FORMAT


def check_birth_date(value: date, *, today: date | None = None) -> str | None:
    return None if EARLIEST_BIRTH <= value <= (today or date.today()) else MSG_BIRTH_RANGE


def check_name(value: str) -> str | None:
    name = value.strip()
    if not name or len(name) > 32 or any(ch.isdigit() for ch in name):
        return MSG_NAME
    return None


def check_sex(value: str | None) -> str | None:
    return None if value is None or value in SEXES else MSG_SEX


def check_card_number(value: str) -> str | None:
    return None if _CARD_FORMAT.match(normalise_card_number(value)) else MSG_CARD_FORMAT


def mask_phone(phone: str) -> str:
    """138****1234."""
    return f"{phone[:3]}****{phone[-4:]}" if len(phone) >= 8 else "****"


def mask_id_number(number: str) -> str:
    """4403**********1234: region prefix and last four only."""
    return f"{number[:4]}{'*' * (len(number) - 8)}{number[-4:]}" if len(number) > 8 else "****"


def mask_card_number(number: str) -> str:
    """****5678: the last four are enough to tell two cards apart on the phone."""
    return f"****{number[-4:]}" if len(number) > 4 else "****"
