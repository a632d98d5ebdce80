"""就诊人 service: validation errors in Chinese, deduplication by ID hash, shared children, self."""

from __future__ import annotations

from datetime import date

import pytest
import sqlalchemy as sa

from crm_backend.patients import validation as v
from crm_backend.patients.models import PatientLink, PatientRelation
from crm_backend.patients.records import (
    MSG_EXISTING_MISMATCH,
    MSG_ID_TAKEN,
    MSG_RELATION,
    MSG_SELF_EXISTS,
    PatientDataError,
    add_managed_patient,
    list_managed_patients,
)
from crm_backend.runtime import Runtime
from tests.patients.conftest import make_family, make_team

CHILD_ID = "320106198811110014"  # re-used below as an adult "child" of two parents


async def test_one_child_managed_by_both_parents(runtime: Runtime):
    team = await make_team(runtime)
    mum, dad = await make_family(runtime, team), await make_family(runtime, team)
    async with runtime.db.sessions() as session:
        first = await add_managed_patient(
            session, runtime.protector, mum.identity, "child", name="李一一", sex="M",
            birth_date=date(1988, 11, 11), phone="13800001111", id_number=CHILD_ID,
        )  # fmt: skip
        second = await add_managed_patient(
            session, runtime.protector, dad.identity, "child", name="李一一", sex=None,
            birth_date=None, phone="13900002222", id_number=CHILD_ID.lower(),
        )  # fmt: skip
        again = await add_managed_patient(
            session, runtime.protector, dad.identity, "child", name="李一一", sex=None,
            birth_date=None, phone="13900002222", id_number=CHILD_ID,
        )  # fmt: skip
        await session.commit()
        assert first.patient_id == second.patient_id == again.patient_id
        links = (
            await session.scalars(sa.select(PatientLink).where(PatientLink.patient_id == first.patient_id))
        ).all()
        assert {link.identity_id for link in links} == {mum.identity.id, dad.identity.id}
        mine = await list_managed_patients(session, runtime.protector, dad.identity)
    assert [(m.patient_id, m.relationship) for m in mine] == [(first.patient_id, PatientRelation.CHILD)]
    assert mine[0].phone == "13800001111"  # the record on file is kept, not overwritten
    assert mine[0].id_number == CHILD_ID


async def test_self_fills_the_holders_own_record_and_comes_first(runtime: Runtime):
    family = await make_family(runtime, await make_team(runtime))
    async with runtime.db.sessions() as session:
        await add_managed_patient(
            session, runtime.protector, family.identity, "parent", name="赵老太", sex="F",
            birth_date=date(1949, 12, 31), phone="13700003333", id_number="11010519491231002X",
        )  # fmt: skip
        me = await add_managed_patient(
            session, runtime.protector, family.identity, "self", name="赵先生", sex="M",
            birth_date=date(1980, 2, 15), phone="13700004444", card_number="card-778899",
        )  # fmt: skip
        await session.commit()
        assert me.patient_id == family.patient_id and me.card_number == "CARD778899"
        listed = await list_managed_patients(session, runtime.protector, family.identity)
        assert [m.relationship for m in listed] == ["self", "parent"]
        with pytest.raises(PatientDataError) as error:
            await add_managed_patient(
                session, runtime.protector, family.identity, "self", name="赵先生", sex="M",
                birth_date=date(1980, 2, 15), phone="13700004444", card_number="778899",
            )  # fmt: skip
        assert error.value.message == MSG_SELF_EXISTS
        other = await make_family(runtime, family.team_id)
        with pytest.raises(PatientDataError) as error:  # someone else's ID number as "self"
            await add_managed_patient(
                session, runtime.protector, other.identity, "self", name="赵老太", sex=None,
                birth_date=None, phone="13700005555", id_number="11010519491231002X",
            )  # fmt: skip
        assert error.value.message == MSG_ID_TAKEN


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"relationship": "cousin"}, MSG_RELATION),
        ({"phone": "12345678901"}, v.MSG_PHONE_FORMAT),
        ({"id_number": "440305198002154562"}, v.MSG_ID_CHECKSUM),
        ({"birth_date": date(1980, 2, 16)}, v.MSG_BIRTH_MISMATCH),
        ({"sex": "M"}, v.MSG_SEX_MISMATCH),  # 17th digit 6: female
        ({"name": " "}, v.MSG_NAME),
        ({"id_number": None}, v.MSG_ID_OR_CARD),
        ({"name": "别人"}, MSG_EXISTING_MISMATCH),  # the ID is on file under another name
    ],
)
async def test_invalid_details_are_refused_with_a_message(runtime: Runtime, changes: dict, message: str):
    family = await make_family(runtime, await make_team(runtime))
    values = {
        "relationship": "spouse", "name": "陈女士", "sex": "F", "birth_date": date(1980, 2, 15),
        "phone": "13600006666", "id_number": "440305198002154561",
    }  # fmt: skip
    async with runtime.db.sessions() as session:
        if message == MSG_EXISTING_MISMATCH:
            await add_managed_patient(session, runtime.protector, family.identity, **values)
        values.update(changes)
        other = await make_family(runtime, family.team_id)
        with pytest.raises(PatientDataError) as error:
            await add_managed_patient(session, runtime.protector, other.identity, **values)
        assert error.value.message == message
        await session.rollback()
