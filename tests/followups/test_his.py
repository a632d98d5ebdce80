"""POST /api/his/discharges as a HIS calls it: the token, malformed FHIR, the plan by procedure text or
code, the patient by resident ID or phone (or created), due times in hospital time, and a retry or
two identical requests racing creating nothing twice."""

from __future__ import annotations

import asyncio
import copy
import itertools
import json
from collections.abc import AsyncIterator
from datetime import date, datetime
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from crm_backend.audit.models import AuditEntry
from crm_backend.body_limit import BodyLimit
from crm_backend.followups.his_views import router as his_router
from crm_backend.followups.models import FollowupCheckin, FollowupEnrolment, FollowupPlanVersion
from crm_backend.followups.plan_service import current_versions, definition_of, ensure_shipped_plans
from crm_backend.patients.models import Patient
from crm_backend.patients.validation import id_checksum_char
from crm_backend.protection import ID_NUMBER, PHONE
from crm_backend.runtime import Runtime
from tests.followups.conftest import HIS_TOKEN, REDIS_URL
from tests.followups.enrolment_support import make_team
from tests.support.api import api_settings, build_api_app, new_client

NI = {"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "NI"}
MR = {"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}
LAP_CHOLE = "腹腔镜胆囊切除术"
_serial = itertools.count(1)


def resident_id(birth: str = "19620415") -> str:
    """A resident ID with a valid check character, different each call (Beijing Dongcheng)."""
    first17 = f"110101{birth}{next(_serial) % 1000:03d}"
    return first17 + id_checksum_char(first17)


def new_phone() -> str:
    return f"139{next(_serial) + 10_000_000:08d}"


def bundle(
    *,
    id_number: str | None = None,
    phone: str | None = None,
    name: str = "李秀英",
    encounter: str | None = None,
    procedures: list[dict[str, Any]] | None = None,
    discharged: str = "2026-12-07T16:20:00+08:00",
) -> dict[str, Any]:
    identifiers = [{"type": {"coding": [MR]}, "system": "urn:hospital:mrn", "value": f"MR{next(_serial)}"}]
    if id_number:
        identifiers.insert(0, {"type": {"coding": [NI]}, "value": id_number})
    patient: dict[str, Any] = {
        "resourceType": "Patient",
        "id": "p1",
        "identifier": identifiers,
        "name": [{"text": name}],
        "gender": "female",
        "birthDate": "1962-04-15",
    }
    if phone:
        patient["telecom"] = [{"system": "phone", "value": phone, "use": "mobile"}]
    procedure_entries = [
        {
            "resource": {
                "resourceType": "Procedure",
                "status": "completed",
                "subject": {"reference": "Patient/p1"},
                "performedDateTime": "2026-12-05T09:30:00+08:00",
                **p,
            }
        }
        for p in (procedures or [{"code": {"text": LAP_CHOLE}}])
    ]
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"resource": patient},
            {
                "resource": {
                    "resourceType": "Encounter",
                    "status": "finished",
                    "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
                    "identifier": [
                        {"system": "urn:hospital:encounter", "value": encounter or f"ZY{next(_serial)}"}
                    ],
                    "subject": {"reference": "Patient/p1"},
                    "participant": [
                        {
                            "type": [{"coding": [{"code": "ATND"}]}],
                            "individual": {"display": "陈志远"},
                        }
                    ],
                    "period": {"start": "2026-12-04T08:00:00+08:00", "end": discharged},
                }
            },
            *procedure_entries,
        ],
    }


HEADERS = {"Authorization": f"Bearer {HIS_TOKEN}", "Content-Type": "application/fhir+json"}


@pytest.fixture(scope="module")
async def lap_chole(runtime: Runtime) -> FollowupPlanVersion:
    """The shipped laparoscopic cholecystectomy plan (shipped_plans.yml): days 1, 3, 7, 30 at 10:00."""
    async with runtime.db.sessions() as session:
        await ensure_shipped_plans(session)
        await session.commit()
        [version] = [
            v for v in await current_versions(session) if definition_of(v).code == "lap_cholecystectomy"
        ]
    return version


@pytest.fixture
async def his(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with new_client(app) as client:
        yield client


async def post(client: httpx.AsyncClient, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
    return await client.post("/api/his/discharges", content=content, headers=headers or HEADERS)


async def test_the_endpoint_is_off_without_a_token(database_url: str):
    runtime = Runtime.create(api_settings(database_url, REDIS_URL))
    try:
        app = await build_api_app(runtime, his_router)
        async with new_client(app) as client:
            response = await post(client, bundle(id_number=resident_id()))
        assert response.status_code == 404
    finally:
        await runtime.close()


async def test_a_wrong_or_missing_token_is_401(his: httpx.AsyncClient, lap_chole: FollowupPlanVersion):
    body = bundle(id_number=resident_id())
    for headers in (
        {"Content-Type": "application/fhir+json"},
        {**HEADERS, "Authorization": "Bearer not-the-token"},
        {**HEADERS, "Authorization": f"Basic {HIS_TOKEN}"},
    ):
        response = await post(his, body, headers)
        assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"
    assert await _enrolments_of(his, body) == 0


async def _enrolments_of(his: httpx.AsyncClient, body: dict[str, Any]) -> int:
    runtime: Runtime = his._transport.app.state.runtime  # type: ignore[attr-defined]
    encounter = body["entry"][1]["resource"]["identifier"][0]
    async with runtime.db.sessions() as session:
        return (
            await session.scalar(
                sa.select(sa.func.count())
                .select_from(FollowupEnrolment)
                .where(FollowupEnrolment.encounter_key == f"{encounter['system']}|{encounter['value']}")
            )
            or 0
        )


async def test_malformed_requests_are_400_naming_the_problem(
    his: httpx.AsyncClient, lap_chole: FollowupPlanVersion
):
    not_json = await post(his, b'{"resourceType": "Bundle", ')
    assert not_json.status_code == 400 and not_json.json()["detail"].startswith("the body is not JSON")

    no_subject = bundle(id_number=resident_id())
    del no_subject["entry"][2]["resource"]["subject"]
    response = await post(his, no_subject)
    assert response.status_code == 400
    assert "not a valid FHIR R4B Bundle" in response.json()["detail"]
    assert "entry.2.resource.subject" in response.json()["detail"]

    no_encounter_id = bundle(id_number=resident_id())
    del no_encounter_id["entry"][1]["resource"]["identifier"]
    response = await post(his, no_encounter_id)
    assert response.status_code == 400 and "Encounter.identifier" in response.json()["detail"]

    no_end = bundle(id_number=resident_id())
    del no_end["entry"][1]["resource"]["period"]["end"]
    response = await post(his, no_end)
    assert response.status_code == 400 and "Encounter.period.end" in response.json()["detail"]

    bad_id = bundle(id_number="110101196204150000")
    response = await post(his, bad_id)
    assert response.status_code == 400 and "resident ID" in response.json()["detail"]

    two_patients = bundle(id_number=resident_id())
    two_patients["entry"].append(copy.deepcopy(two_patients["entry"][0]))
    response = await post(his, two_patients)
    assert response.status_code == 400 and "exactly one Patient" in response.json()["detail"]

    response = await post(his, bundle(id_number=resident_id()), {**HEADERS, "Content-Type": "text/plain"})
    assert response.status_code == 415
    for body in (no_subject, no_encounter_id, no_end, bad_id, two_patients):
        if body is not no_encounter_id:
            assert await _enrolments_of(his, body) == 0


async def test_no_plan_for_the_procedure_is_422_naming_the_known_ones(
    his: httpx.AsyncClient, lap_chole: FollowupPlanVersion
):
    body = bundle(id_number=resident_id(), procedures=[{"code": {"text": "甲状腺次全切除术"}}])
    response = await post(his, body)
    assert response.status_code == 422
    answer = response.json()
    assert "甲状腺次全切除术" in answer["detail"]
    known = {procedure for plan in answer["known_procedures"] for procedure in plan["procedures"]}
    assert LAP_CHOLE in known
    assert await _enrolments_of(his, body) == 0


async def test_a_discharge_is_enrolled_with_due_times_in_hospital_time(
    his: httpx.AsyncClient, runtime: Runtime, lap_chole: FollowupPlanVersion
):
    id_number = resident_id()
    response = await post(his, bundle(id_number=id_number, phone=new_phone()))
    assert response.status_code == 201, response.text
    answer = response.json()
    assert (answer["plan_code"], answer["created"], answer["source"]) == ("lap_cholecystectomy", True, "his")
    assert answer["plan_version"] == lap_chole.version
    assert (answer["anchor_date"], answer["discharged_on"]) == ("2026-12-07", "2026-12-07")
    assert (answer["attending_doctor"], answer["procedure"], answer["status"]) == (
        "陈志远",
        LAP_CHOLE,
        "active",
    )
    assert [(c["day"], c["due_at"]) for c in answer["checkins"]] == [
        (1, "2026-12-08T10:00:00+08:00"),
        (3, "2026-12-10T10:00:00+08:00"),
        (7, "2026-12-14T10:00:00+08:00"),
        (30, "2027-01-06T10:00:00+08:00"),
    ]
    async with runtime.db.sessions() as session:
        patient = await session.get(Patient, answer["patient_id"])
        assert patient is not None
        assert patient.id_number_hash == runtime.protector.lookup_hash(ID_NUMBER, id_number)
        assert (patient.display_name, patient.sex, patient.birth_date) == ("李秀英", "F", date(1962, 4, 15))
        enrolment = await session.get(FollowupEnrolment, answer["id"])
        assert enrolment is not None and enrolment.plan_version_id == lap_chole.id
        entry = await session.scalar(
            sa.select(AuditEntry).where(
                AuditEntry.action == "followup_enrolment.his", AuditEntry.object_id == str(answer["id"])
            )
        )
        assert entry is not None and entry.staff_id is None and entry.patient_id == patient.id
        assert entry.detail is not None and entry.detail["actor"] == "his"


async def test_the_plan_is_found_by_code_or_synonym(his: httpx.AsyncClient, lap_chole: FollowupPlanVersion):
    by_code = bundle(
        id_number=resident_id(),
        procedures=[
            {"code": {"text": "胆道探查"}},
            {"code": {"coding": [{"system": "urn:oid:2.16.156.10011.2.3.2.7", "code": "51.23"}]}},
        ],
    )
    response = await post(his, by_code)
    assert response.status_code == 201 and response.json()["plan_code"] == "lap_cholecystectomy"
    by_synonym = bundle(
        id_number=resident_id(), procedures=[{"code": {"text": "腹腔镜下 胆囊切除术（急诊）"}}]
    )
    response = await post(his, by_synonym)
    assert response.status_code == 201, response.text


async def test_a_retry_answers_the_same_enrolment_and_creates_nothing(
    his: httpx.AsyncClient, runtime: Runtime, lap_chole: FollowupPlanVersion
):
    body = bundle(id_number=resident_id())
    first = await post(his, body)
    again = await post(his, body)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == {**first.json(), "created": False}
    assert await _enrolments_of(his, body) == 1
    async with runtime.db.sessions() as session:
        count = await session.scalar(
            sa.select(sa.func.count())
            .select_from(FollowupCheckin)
            .where(FollowupCheckin.enrolment_id == first.json()["id"])
        )
    assert count == 4


async def test_a_retry_that_says_otherwise_is_409_naming_what_differs_and_changes_nothing(
    his: httpx.AsyncClient, runtime: Runtime, lap_chole: FollowupPlanVersion
):
    """Same Encounter identifier, another discharge date and patient: not silently the old answer."""
    body = bundle(id_number=resident_id(), encounter="ZY-corrected")
    first = await post(his, body)
    assert first.status_code == 201, first.text
    changed = bundle(
        id_number=resident_id("19700101"), encounter="ZY-corrected", discharged="2026-12-09T10:00:00+08:00"
    )
    conflict = await post(his, changed)
    assert conflict.status_code == 409, conflict.text
    assert conflict.json()["enrolment_id"] == first.json()["id"]
    assert conflict.json()["differences"] == [
        "Encounter.period.end (discharge date)",
        "Patient.identifier (resident ID)",
    ]
    again = await post(his, body)
    assert again.status_code == 200 and again.json() == {**first.json(), "created": False}
    assert await _enrolments_of(his, body) == 1


async def test_two_identical_requests_racing_create_one_enrolment_and_one_patient(
    app: FastAPI, runtime: Runtime, lap_chole: FollowupPlanVersion
):
    id_number = resident_id()
    body = bundle(id_number=id_number, phone=new_phone())
    async with new_client(app) as a, new_client(app) as b:
        responses = await asyncio.gather(post(a, body), post(b, body))
    assert sorted(r.status_code for r in responses) == [200, 201]
    assert responses[0].json()["id"] == responses[1].json()["id"]
    async with runtime.db.sessions() as session:
        patients = await session.scalar(
            sa.select(sa.func.count())
            .select_from(Patient)
            .where(Patient.id_number_hash == runtime.protector.lookup_hash(ID_NUMBER, id_number))
        )
    assert patients == 1


async def test_the_patient_is_matched_by_resident_id_or_phone_or_created(
    his: httpx.AsyncClient, runtime: Runtime, lap_chole: FollowupPlanVersion
):
    protector = runtime.protector
    id_number, phone = resident_id(), new_phone()
    async with runtime.db.sessions() as session:
        by_id = Patient(
            display_name="李秀英",
            id_number_cipher=protector.encrypt(ID_NUMBER, id_number),
            id_number_hash=protector.lookup_hash(ID_NUMBER, id_number),
            created_at=datetime.now().astimezone(),
        )
        by_phone = Patient(
            display_name="赵桂兰",
            phone_cipher=protector.encrypt(PHONE, phone),
            phone_hash=protector.lookup_hash(PHONE, phone),
        )
        session.add_all([by_id, by_phone])
        await session.commit()

    response = await post(his, bundle(id_number=id_number, phone=new_phone()))
    assert response.status_code == 201 and response.json()["patient_id"] == by_id.id
    response = await post(his, bundle(phone=phone, name="赵桂兰"))
    assert response.status_code == 201 and response.json()["patient_id"] == by_phone.id
    # The same phone with another name (a relative's phone) is not enough: a new patient.
    response = await post(his, bundle(phone=phone, name="赵小军"))
    assert response.status_code == 201 and response.json()["patient_id"] not in (by_id.id, by_phone.id)
    async with runtime.db.sessions() as session:
        filled = await session.get(Patient, by_id.id)
        assert filled is not None and filled.phone_hash is not None  # what the record lacked, the HIS filled


async def test_an_oversized_body_is_refused_with_413(runtime: Runtime, lap_chole: FollowupPlanVersion):
    app = await build_api_app(runtime, his_router)
    app.add_middleware(BodyLimit)  # as the web app has it
    body = bundle(id_number=resident_id())
    body["entry"][0]["resource"]["name"][0]["text"] = "李" * (300 * 1024)
    async with new_client(app) as client:
        response = await post(client, body)
    assert response.status_code == 413
    async with new_client(app) as client:
        assert await _enrolments_of(client, body) == 0


async def test_the_team_is_the_ward_the_his_names_else_nursing(
    his: httpx.AsyncClient, runtime: Runtime, lap_chole: FollowupPlanVersion
):
    ward_name = f"肝胆外科一病区{next(_serial)}"
    ward = await make_team(runtime, ward_name)
    nursing = await make_team(runtime, "护理团队")
    named = bundle(id_number=resident_id())
    named["entry"][1]["resource"]["serviceProvider"] = {"display": ward_name}
    unknown = bundle(id_number=resident_id())
    unknown["entry"][1]["resource"]["serviceProvider"] = {"display": "不存在的病区"}
    assert (await post(his, named)).json()["team_id"] == ward
    assert (await post(his, unknown)).json()["team_id"] == nursing
    assert (await post(his, bundle(id_number=resident_id()))).json()["team_id"] == nursing


async def test_hostile_nesting_is_400_not_a_server_error(
    his: httpx.AsyncClient, lap_chole: FollowupPlanVersion
):
    """JSON nested deeper than Python's recursion limit (well inside 256 KiB) is refused by name."""
    deep_json = (
        b'{"resourceType": "Bundle", "type": "collection", "x": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"
    )
    response = await post(his, deep_json)
    assert response.status_code == 400 and "nested too deeply" in response.json()["detail"]

    body = bundle(id_number=resident_id())
    extension: list[dict[str, Any]] = []
    for _ in range(400):  # valid JSON, but extensions inside extensions past the validator's depth
        extension = [{"url": "urn:x", "extension": extension}]
    body["entry"][0]["resource"]["extension"] = extension
    response = await post(his, body)
    assert response.status_code == 400 and "nested too deeply" in response.json()["detail"]
    assert await _enrolments_of(his, body) == 0


async def test_a_record_without_a_name_is_never_matched_by_phone(
    his: httpx.AsyncClient, lap_chole: FollowupPlanVersion
):
    """A HIS Patient without a name creates a record with only the family's phone; the next discharge
    with that phone (the parent's, named) must not be attached to it."""
    phone = new_phone()
    nameless = bundle(phone=phone)
    nameless["entry"][0]["resource"]["name"] = []
    first = await post(his, nameless)
    assert first.status_code == 201
    second = await post(his, bundle(phone=phone, name="王建国"))
    assert second.status_code == 201 and second.json()["patient_id"] != first.json()["patient_id"]


async def test_an_encounter_key_too_long_to_store_whole_is_400(
    his: httpx.AsyncClient, lap_chole: FollowupPlanVersion
):
    """Cut to the column's 255 characters, two admissions sharing the first 255 would be one: the
    second discharge (maybe another patient) would be answered with the first one's enrolment."""
    prefix = "ZY" + "0" * 260
    first, second = bundle(id_number=resident_id()), bundle(id_number=resident_id(), name="王建国")
    first["entry"][1]["resource"]["identifier"][0]["value"] = prefix + "1"
    second["entry"][1]["resource"]["identifier"][0]["value"] = prefix + "2"
    for body in (first, second):
        response = await post(his, body)
        assert response.status_code == 400 and "Encounter.identifier" in response.json()["detail"]


async def test_the_same_discharge_under_a_new_encounter_identifier_is_409_naming_the_enrolment(
    his: httpx.AsyncClient, runtime: Runtime, lap_chole: FollowupPlanVersion
):
    """A re-send under another Encounter identifier must not ask the patient everything twice."""
    id_number = resident_id()
    first = await post(his, bundle(id_number=id_number, encounter=f"ENC-A-{next(_serial)}"))
    assert first.status_code == 201, first.text
    again = await post(his, bundle(id_number=id_number, encounter=f"ENC-B-{next(_serial)}"))
    assert again.status_code == 409, again.text
    assert again.json()["enrolment_id"] == first.json()["id"]
    assert f"enrolment {first.json()['id']}" in again.json()["detail"]
    async with runtime.db.sessions() as session:
        count = await session.scalar(
            sa.select(sa.func.count()).where(FollowupEnrolment.patient_id == first.json()["patient_id"])
        )
    assert count == 1


@pytest.mark.parametrize(
    ("discharged", "performed", "named"),
    [
        ("9999-12-31T23:00:00-10:00", None, "Encounter.period.end 9999-12-31"),
        (
            "2026-12-07T16:20:00+08:00",
            "9999-12-31T10:00:00+08:00",
            "Procedure 1 performedDateTime 9999-12-31",
        ),
        ("1900-01-01T10:00:00+08:00", None, "Encounter.period.end 1900-01-01"),
    ],
)
async def test_a_date_outside_the_calendar_we_follow_is_400_not_a_server_error(
    his: httpx.AsyncClient, lap_chole: FollowupPlanVersion, discharged: str, performed: str | None, named: str
):
    procedure: dict[str, Any] = {"code": {"text": LAP_CHOLE}}
    if performed:
        procedure["performedDateTime"] = performed
    response = await post(his, bundle(id_number=resident_id(), discharged=discharged, procedures=[procedure]))
    assert response.status_code == 400, response.text
    assert response.json()["detail"] == f"{named}: outside 2000-01-01 to 2100-12-31"
