"""Resident ID numbers typed in chat are kept sealed, not in the conversation's plain text.

Patients type their 身份证号 when they register a 就诊人. The number must reach the bot whole (the CRM
checks and stores it encrypted), but the stored message, the stored push and everything the console
shows carry it masked (4403**********1237); the original is kept encrypted beside the message, with
the same keys as patient records, so nothing the patient sent is lost.
"""

from __future__ import annotations

import re
from typing import Any

from crm_backend.patients.validation import check_resident_id, mask_id_number, normalise_id_number
from crm_backend.protection import ID_NUMBER, FieldProtector

_ID_LIKE = re.compile(r"(?<![0-9A-Za-z])[0-9]{17}[0-9Xx](?![0-9A-Za-z])")
SEALED_KEY = "sealed_id_numbers"


def seal_id_numbers(text: str, protector: FieldProtector) -> tuple[str, list[str]]:
    """The text with every valid resident ID number masked, and those numbers encrypted, in order."""
    sealed: list[str] = []

    def mask(match: re.Match[str]) -> str:
        number = normalise_id_number(match.group(0))
        if check_resident_id(number) is not None:
            return match.group(0)  # not a real ID number (an order number, a typo): left as typed
        sealed.append(protector.encrypt(ID_NUMBER, match.group(0)))
        return mask_id_number(number)

    return _ID_LIKE.sub(mask, text), sealed


def unsealed_text(content: str, extra: dict[str, Any] | None, protector: FieldProtector) -> str:
    """What the patient really typed, for the bot: each masked number replaced by its original."""
    tokens = (extra or {}).get(SEALED_KEY) or []
    for token in tokens:
        original = protector.decrypt(ID_NUMBER, token)
        content = content.replace(mask_id_number(normalise_id_number(original)), original, 1)
    return content
