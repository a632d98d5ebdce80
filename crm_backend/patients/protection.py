"""Field protection moved to `crm_backend/protection.py`, below every domain, as each process's
Runtime carries the protector. Kept for the callers still importing it from here; new code imports
`crm_backend.protection`."""

from crm_backend.protection import (
    CARD_NUMBER,
    ID_NUMBER,
    PHONE,
    AesGcmProtector,
    FieldProtector,
    ProtectionError,
    parse_data_keys,
    protector_for,
)

__all__ = [
    "CARD_NUMBER",
    "ID_NUMBER",
    "PHONE",
    "AesGcmProtector",
    "FieldProtector",
    "ProtectionError",
    "parse_data_keys",
    "protector_for",
]
