"""Encryption at rest: ciphertext in the database, round trips, key rotation, wrong keys, key settings."""

from __future__ import annotations

import base64
import logging
from datetime import date

import pytest
import sqlalchemy as sa

from crm_backend.config import Settings
from crm_backend.patient_record.search import search_patients
from crm_backend.patients.models import Patient, WeChatIdentity
from crm_backend.patients.records import add_managed_patient
from crm_backend.protection import (
    ID_NUMBER,
    PHONE,
    AesGcmProtector,
    ProtectionConfigError,
    ProtectionError,
    _build,
    parse_data_keys,
    protector_for,
)
from crm_backend.runtime import Runtime
from crm_backend.staff.deps import CurrentStaff
from crm_backend.staff.models import StaffRole
from tests.support.api import KEY_A, KEY_B, LOOKUP_KEY

LOOKUP = base64.b64decode(LOOKUP_KEY)
OLD = AesGcmProtector(parse_data_keys(f"a:{KEY_A}"), LOOKUP)
ROTATED = AesGcmProtector(parse_data_keys(f"b:{KEY_B},a:{KEY_A}"), LOOKUP)
ONLY_B = AesGcmProtector(parse_data_keys(f"b:{KEY_B}"), LOOKUP)
SUPERVISOR = CurrentStaff(1, "s", "s", StaffRole.supervisor, frozenset(), "x")


def test_round_trip_with_a_fresh_nonce_each_time():
    first, second = OLD.encrypt(PHONE, "13812345678"), OLD.encrypt(PHONE, "13812345678")
    assert first != second and first.startswith("a:")
    assert OLD.decrypt(PHONE, first) == OLD.decrypt(PHONE, second) == "13812345678"


def test_rotation_new_key_encrypts_old_key_still_decrypts():
    old_token = OLD.encrypt(ID_NUMBER, "11010519491231002X")
    new_token = ROTATED.encrypt(ID_NUMBER, "11010519491231002X")
    assert new_token.startswith("b:")
    assert ROTATED.decrypt(ID_NUMBER, old_token) == "11010519491231002X"
    assert ROTATED.needs_reencryption(old_token) and not ROTATED.needs_reencryption(new_token)
    rewritten = ROTATED.reencrypt(ID_NUMBER, old_token)
    assert ONLY_B.decrypt(ID_NUMBER, rewritten) == "11010519491231002X"
    with pytest.raises(ProtectionError):  # the retired key's values need "a" until re-encrypted
        ONLY_B.decrypt(ID_NUMBER, old_token)


def test_wrong_key_tampering_and_moved_values_fail():
    token = OLD.encrypt(PHONE, "13812345678")
    impostor = AesGcmProtector([("a", b"Z" * 32)], LOOKUP)  # same key id, different key
    with pytest.raises(ProtectionError):
        impostor.decrypt(PHONE, token)
    kid, body = token.split(":")
    raw = bytearray(base64.urlsafe_b64decode(body))
    raw[-1] ^= 1
    with pytest.raises(ProtectionError):
        OLD.decrypt(PHONE, f"{kid}:{base64.urlsafe_b64encode(bytes(raw)).decode()}")
    with pytest.raises(ProtectionError):  # field name is associated data: no copying between columns
        OLD.decrypt(ID_NUMBER, token)


def test_lookup_hash_is_keyed_and_separated_per_field():
    assert OLD.lookup_hash(PHONE, "13812345678") == ROTATED.lookup_hash(PHONE, "13812345678")
    assert OLD.lookup_hash(PHONE, "13812345678") != OLD.lookup_hash(ID_NUMBER, "13812345678")
    other = AesGcmProtector(parse_data_keys(f"a:{KEY_A}"), b"M" * 32)
    assert other.lookup_hash(PHONE, "13812345678") != OLD.lookup_hash(PHONE, "13812345678")


@pytest.mark.parametrize(
    "spec",
    ["", "nokey", f"a:{base64.b64encode(b'short').decode()}", "a:not base64!", f"a:{KEY_A},a:{KEY_B}"],
)
def test_malformed_data_keys_are_refused(spec: str):
    with pytest.raises(ProtectionConfigError):
        parse_data_keys(spec)


def test_lookup_key_must_differ_from_data_keys():
    with pytest.raises(ProtectionConfigError):
        AesGcmProtector(parse_data_keys(f"a:{KEY_A}"), base64.b64decode(KEY_A))


def test_unset_keys_with_real_credentials_refuse_to_start():
    settings = Settings(WECHAT_OA_APPID="wx1234567890abcdef", PATIENT_DATA_KEYS="", PATIENT_LOOKUP_KEY="")
    with pytest.raises(ProtectionConfigError, match="PATIENT_DATA_KEYS and PATIENT_LOOKUP_KEY must be set"):
        Runtime.create(settings)


def test_unset_keys_in_the_sandbox_use_the_development_key_with_a_warning(caplog: pytest.LogCaptureFixture):
    settings = Settings(WECHAT_OA_APPID="", PATIENT_DATA_KEYS="", PATIENT_LOOKUP_KEY="")
    with caplog.at_level(logging.WARNING, logger="carebridge.patients.protection"):
        _build.cache_clear()  # the warning is logged when the key set is first built
        protector = protector_for(settings)
    assert protector.encrypt(PHONE, "13800000000").startswith("dev:")
    assert "development key" in caplog.text


def test_settings_repr_hides_the_keys():
    settings = Settings(PATIENT_DATA_KEYS=f"a:{KEY_A}", PATIENT_LOOKUP_KEY=LOOKUP_KEY)
    assert KEY_A not in repr(settings) and LOOKUP_KEY not in repr(settings)


async def test_raw_rows_hold_ciphertext_and_search_goes_through_the_hash(runtime: Runtime):
    protector = runtime.protector
    async with runtime.db.sessions() as session:
        holder = Patient()
        session.add(holder)
        await session.flush()
        identity = WeChatIdentity(app_id="wx_test", openid="openid-raw-check", patient_id=holder.id)
        session.add(identity)
        await session.flush()
        added = await add_managed_patient(
            session, protector, identity, "child", name="王小明", sex=None, birth_date=None,
            phone="139 8765 4321", id_number="440305201506011235", card_number="A0099887766",
        )  # fmt: skip
        await session.commit()
        row = (
            (
                await session.execute(
                    sa.text("SELECT * FROM patients WHERE id = :id"), {"id": added.patient_id}
                )
            )
            .mappings()
            .one()
        )
    stored = " ".join(str(value) for value in row.values())
    for secret in ("13987654321", "440305201506011235", "0099887766"):
        assert secret not in stored
    assert row["phone_cipher"].startswith("a:") and len(row["phone_hash"]) == 64
    assert protector.decrypt(PHONE, row["phone_cipher"]) == "13987654321"
    assert protector.decrypt(ID_NUMBER, row["id_number_cipher"]) == "440305201506011235"
    assert row["birth_date"] == date(2015, 6, 1) and row["sex"] == "M"

    async with runtime.db.sessions() as session:
        for query in ("13987654321", "+86 139-8765-4321", "440305201506011235", "A0099887766", "王小"):
            _, found = await search_patients(session, protector, SUPERVISOR, query)
            assert [p.id for p in found] == [added.patient_id], query
        _, none = await search_patients(session, protector, SUPERVISOR, "13987654320")
        assert none == []
