"""Encryption at rest and keyed lookup hashes for patients' ID, phone and hospital card numbers.

Each protected field is two columns: `<field>_cipher` holds ``<key id>:<base64url(nonce ‖ ciphertext ‖
tag)>`` (AES-256-GCM, a fresh 96-bit nonce per value, the field name as associated data so a value
cannot be moved to another column), and `<field>_hash` holds HMAC-SHA256 over ``<field>:<normalised
value>`` with a separate lookup key, so exact search works without decrypting every row.

Keys come from settings: ``PATIENT_DATA_KEYS="k2:<base64 32 bytes>,k1:<base64 32 bytes>"`` — the first
key encrypts, every listed key decrypts (rotation: put the new key first, keep the old ones until
every value is re-encrypted with `reencrypt`). ``PATIENT_LOOKUP_KEY`` is one base64 key of at least
32 bytes; changing it means recomputing every hash, so it is not rotated casually.

It sits below every domain, beside the runtime that carries each process's protector: patients,
conversations (sealed ID numbers in chat) and the console's patient views all use it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import os
import re
from functools import lru_cache
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from crm_backend.config import Settings

log = logging.getLogger("carebridge.patients.protection")

#: Field names double as associated data and hash domains; change them and old values stop decrypting.
PHONE = "phone"
ID_NUMBER = "id_number"
CARD_NUMBER = "card_number"
#: A phone number as the console shows it (138****1234): staff search by what they were told.
MASKED_PHONE = "masked_phone"

_KID = re.compile(r"^[A-Za-z0-9_-]{1,16}$")
NONCE_BYTES = 12

#: Used only when the keys are unset and no real WeChat account is configured (sandbox, tests).
DEV_KEY_ID = "dev"
DEV_DATA_KEY = hashlib.sha256(b"carebridge development patient data key - not a secret").digest()
DEV_LOOKUP_KEY = hashlib.sha256(b"carebridge development patient lookup key - not a secret").digest()


class ProtectionConfigError(RuntimeError):
    """The keys are missing or malformed: the process must not start."""


class ProtectionError(ValueError):
    """A stored value cannot be decrypted (unknown key id, wrong key, or tampered data)."""


class FieldProtector(Protocol):
    """What the rest of the code needs; tests and a future KMS-backed version implement the same."""

    def encrypt(self, field: str, value: str) -> str: ...

    def decrypt(self, field: str, token: str) -> str: ...

    def lookup_hash(self, field: str, normalised: str) -> str: ...


def _decode_key(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ProtectionConfigError(f"{what} is not valid base64") from exc


def parse_data_keys(spec: str) -> list[tuple[str, bytes]]:
    """'kid:base64,kid2:base64' → [(kid, 32-byte key), ...], first one the encryption key."""
    keys: list[tuple[str, bytes]] = []
    for part in filter(None, (p.strip() for p in spec.split(","))):
        kid, sep, encoded = part.partition(":")
        if not sep or not _KID.match(kid):
            raise ProtectionConfigError(
                "PATIENT_DATA_KEYS must look like 'kid:<base64 32 bytes>,kid2:...'"
                " (key ids: 1-16 letters, digits, '-' or '_')"
            )
        key = _decode_key(encoded, f"PATIENT_DATA_KEYS key {kid!r}")
        if len(key) != 32:
            raise ProtectionConfigError(f"PATIENT_DATA_KEYS key {kid!r} must be 32 bytes (AES-256)")
        if any(kid == known for known, _ in keys):
            raise ProtectionConfigError(f"PATIENT_DATA_KEYS lists key id {kid!r} twice")
        keys.append((kid, key))
    if not keys:
        raise ProtectionConfigError("PATIENT_DATA_KEYS holds no key")
    return keys


class AesGcmProtector:
    """AES-256-GCM per value plus HMAC-SHA256 lookup hashes."""

    def __init__(self, data_keys: list[tuple[str, bytes]], lookup_key: bytes) -> None:
        if not data_keys:
            raise ProtectionConfigError("at least one data key is needed")
        if len(lookup_key) < 32:
            raise ProtectionConfigError("PATIENT_LOOKUP_KEY must be at least 32 bytes")
        if any(hmac.compare_digest(lookup_key, key) for _, key in data_keys):
            raise ProtectionConfigError("PATIENT_LOOKUP_KEY must differ from every data key")
        self.primary_kid = data_keys[0][0]
        self._ciphers = {kid: AESGCM(key) for kid, key in data_keys}
        self._lookup_key = lookup_key

    def encrypt(self, field: str, value: str) -> str:
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._ciphers[self.primary_kid].encrypt(nonce, value.encode(), field.encode())
        return f"{self.primary_kid}:{base64.urlsafe_b64encode(nonce + sealed).decode()}"

    def decrypt(self, field: str, token: str) -> str:
        kid, _, encoded = token.partition(":")
        cipher = self._ciphers.get(kid)
        if cipher is None:
            raise ProtectionError(f"value encrypted with unknown key id {kid!r}")
        try:
            raw = base64.urlsafe_b64decode(encoded)
            return cipher.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], field.encode()).decode()
        except (InvalidTag, binascii.Error, ValueError) as exc:
            raise ProtectionError(f"{field} value does not decrypt with key {kid!r}") from exc

    def lookup_hash(self, field: str, normalised: str) -> str:
        return hmac.new(self._lookup_key, f"{field}:{normalised}".encode(), hashlib.sha256).hexdigest()

    def needs_reencryption(self, token: str) -> bool:
        return token.partition(":")[0] != self.primary_kid

    def reencrypt(self, field: str, token: str) -> str:
        """The same value under the current first key (for a rotation job)."""
        return self.encrypt(field, self.decrypt(field, token))


@lru_cache(maxsize=8)
def _build(data_keys: str, lookup_key: str, sandbox: bool) -> AesGcmProtector:
    missing = [name for name, value in (("PATIENT_DATA_KEYS", data_keys), ("PATIENT_LOOKUP_KEY", lookup_key))
               if not value.strip()]  # fmt: skip
    if missing and not sandbox:
        raise ProtectionConfigError(
            f"{' and '.join(missing)} must be set when real WeChat credentials are configured:"
            " patients' ID and phone numbers are encrypted with them. Generate keys with"
            ' `python -c "import base64,os;print(base64.b64encode(os.urandom(32)).decode())"`'
            " and see README, Configuration."
        )
    if missing:
        log.warning(
            "%s unset: using the fixed development key (sandbox only; never with real patients)",
            " and ".join(missing),
        )
    keys = parse_data_keys(data_keys) if data_keys.strip() else [(DEV_KEY_ID, DEV_DATA_KEY)]
    lookup = _decode_key(lookup_key, "PATIENT_LOOKUP_KEY") if lookup_key.strip() else DEV_LOOKUP_KEY
    return AesGcmProtector(keys, lookup)


def protector_for(settings: Settings) -> AesGcmProtector:
    """The process's protector; raises ProtectionConfigError so web and worker refuse to start."""
    return _build(settings.patient_data_keys, settings.patient_lookup_key, settings.sandbox_enabled)
