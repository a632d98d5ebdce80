"""Plans as FHIR R4B Questionnaires and back, and answers as a QuestionnaireResponse."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.questionnaire import Questionnaire
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse
from pydantic import ValidationError

from crm_backend.followups.fhir import (
    EXT_FLAG_RULE,
    FhirError,
    plan_bundle,
    plan_from_fhir,
    questionnaire_response,
)
from crm_backend.followups.plan_service import shipped_plans
from crm_backend.followups.plans import PlanDefinition

PLANS = {plan.code: plan for plan in shipped_plans()}


@pytest.mark.parametrize("code", sorted(PLANS))
def test_every_shipped_plan_survives_export_and_import(code: str) -> None:
    exported = json.loads(json.dumps(plan_bundle(PLANS[code], version=1)))
    assert plan_from_fhir(exported) == PLANS[code]


@pytest.mark.parametrize("code", sorted(PLANS))
def test_the_export_is_valid_fhir_r4b(code: str) -> None:
    exported = plan_bundle(PLANS[code], version=3)
    bundle = Bundle.model_validate(exported)
    assert bundle.type == "collection"
    questionnaires = [entry.resource for entry in bundle.entry]
    assert all(isinstance(q, Questionnaire) for q in questionnaires)
    assert len(questionnaires) == len(PLANS[code].time_points)
    for q in questionnaires:
        assert q.version == "3" and q.status == "active"
        assert [item.linkId for item in q.item] == [
            question.code
            for question in PLANS[code].time_points[questionnaires.index(q)].questionnaire.questions
        ]


def test_lap_chole_export_reads_as_a_surgical_nurse_would_expect() -> None:
    day1 = plan_bundle(PLANS["lap_cholecystectomy"])["entry"][0]["resource"]
    focus = day1["useContext"][0]["valueCodeableConcept"]
    assert focus["text"] == "腹腔镜胆囊切除术"
    assert {"system": "http://hl7.org/fhir/sid/icd-9-cm", "code": "51.23"} in focus["coding"]
    items = {item["linkId"]: item for item in day1["item"]}
    temperature = items["temperature"]
    assert temperature["type"] == "decimal"
    urls = {e["url"]: e for e in temperature["extension"]}
    assert urls["http://hl7.org/fhir/StructureDefinition/minValue"]["valueDecimal"] == 35
    assert urls["http://hl7.org/fhir/StructureDefinition/maxValue"]["valueDecimal"] == 42
    assert urls["http://hl7.org/fhir/StructureDefinition/questionnaire-unit"]["valueCoding"]["code"] == "Cel"
    red = [
        e
        for e in temperature["extension"]
        if e["url"] == EXT_FLAG_RULE and {"url": "flag", "valueCode": "red"} in e["extension"]
    ]
    assert {"url": "atLeast", "valueDecimal": 38.5} in red[0]["extension"]
    discharge = items["wound_discharge"]
    assert discharge["enableBehavior"] == "any"
    assert {c["answerCoding"]["code"] for c in discharge["enableWhen"]} == {"red", "swollen"}
    assert items["wound"]["repeats"] is True and items["concerns"]["type"] == "text"


def _day1() -> dict[str, Any]:
    return copy.deepcopy(plan_bundle(PLANS["lap_cholecystectomy"])["entry"][0]["resource"])


def _item(resource: dict[str, Any], link_id: str) -> dict[str, Any]:
    return next(item for item in resource["item"] if item["linkId"] == link_id)


def _broken(change: Any) -> dict[str, Any]:
    resource = _day1()
    change(resource)
    return resource


MALFORMED: list[tuple[str, Any, str]] = [
    ("not_an_object", ["Questionnaire"], "JSON object"),
    ("a_patient", {"resourceType": "Patient", "id": "x"}, "not 'Patient'"),
    ("unknown_field", _broken(lambda r: r.update(colour="red")), "not valid FHIR R4B"),
    ("item_without_type", _broken(lambda r: _item(r, "pain").pop("type")), "not valid FHIR R4B"),
    ("date_item", _broken(lambda r: _item(r, "pain").update(type="date")), "item type 'date'"),
    (
        "nested_group",
        _broken(lambda r: _item(r, "pain").update(item=[{"linkId": "x", "type": "string"}])),
        "nested",
    ),
    (
        "modifier_extension",
        _broken(
            lambda r: _item(r, "pain").update(
                modifierExtension=[{"url": "https://x.example/negate", "valueBoolean": True}]
            )
        ),
        "modifierExtension is not supported",
    ),
    ("no_plan_code", _broken(lambda r: r.pop("identifier")), "identifier"),
    (
        "unknown_carebridge_extension",
        _broken(
            lambda r: _item(r, "pain")["extension"].append(
                {"url": "https://carebridge.example/fhir/StructureDefinition/made-up", "valueString": "x"}
            )
        ),
        "unknown CareBridge extension",
    ),
    (
        "rule_without_flag",
        _broken(
            lambda r: _item(r, "pain")["extension"].append(
                {"url": EXT_FLAG_RULE, "extension": [{"url": "atLeast", "valueDecimal": 3}]}
            )
        ),
        "flag must be given once",
    ),
    (
        "bundle_with_a_patient",
        {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [{"resource": {"resourceType": "Patient"}}],
        },
        "Bundle entry 0 is a Patient",
    ),
    ("empty_bundle", {"resourceType": "Bundle", "type": "collection"}, "no Questionnaire"),
]


@pytest.mark.parametrize(
    ("data", "message"), [(d, m) for _, d, m in MALFORMED], ids=[n for n, _, _ in MALFORMED]
)
def test_malformed_fhir_is_refused_naming_the_problem(data: Any, message: str) -> None:
    with pytest.raises(FhirError) as caught:
        plan_from_fhir(data)
    assert message in str(caught.value)


def test_readable_fhir_that_makes_a_bad_plan_fails_the_plans_own_checks() -> None:
    resource = _day1()
    for extension in _item(resource, "temperature")["extension"]:
        if extension["url"].endswith("/minValue"):
            extension["valueDecimal"] = 45
    with pytest.raises(ValidationError, match="minimum must be below maximum"):
        plan_from_fhir(resource)


def test_one_questionnaire_imports_as_a_plan_of_one_time_point() -> None:
    plan = plan_from_fhir(_day1())
    assert [point.day for point in plan.time_points] == [1]
    assert plan.time_points[0] == PLANS["lap_cholecystectomy"].time_points[0]


def test_answers_export_as_a_questionnaire_response() -> None:
    plan: PlanDefinition = PLANS["lap_cholecystectomy"]
    authored = datetime(2026, 12, 6, 2, 15, tzinfo=UTC)
    answers = {
        "pain": 5,
        "temperature": 38.6,
        "wound": ["red", "swollen"],
        "wound_discharge": "pus",
        "nausea": "none",
        "bowel": "flatus",
        "danger_signs": [],
        "concerns": "伤口有点痒",
    }
    data = questionnaire_response(
        plan, 1, answers, patient_reference="Patient/42", authored=authored, version=2
    )
    response = QuestionnaireResponse.model_validate(data)
    assert response.status == "completed" and response.subject.reference == "Patient/42"
    assert data["questionnaire"].endswith("/Questionnaire/lap_cholecystectomy-day1|2")
    assert data["authored"].startswith("2026-12-06T02:15:00")
    by_link = {item["linkId"]: item.get("answer", []) for item in data["item"]}
    assert list(by_link) == list(answers)
    assert by_link["pain"] == [{"valueInteger": 5}]
    assert by_link["temperature"] == [{"valueDecimal": 38.6}]
    assert [a["valueCoding"]["code"] for a in by_link["wound"]] == ["red", "swollen"]
    assert by_link["wound_discharge"][0]["valueCoding"]["display"] == "流脓，或者有臭味"
    assert by_link["danger_signs"] == []
    assert by_link["concerns"] == [{"valueString": "伤口有点痒"}]


@pytest.mark.parametrize(
    ("answers", "message"),
    [
        ({"pain": "five"}, "not a scale answer"),
        ({"wound": "red"}, "not a multiple_choice answer"),
        ({"nausea": "a_lot"}, "not a single_choice answer"),
        ({"mobility": "on_track"}, "no question mobility"),
    ],
)
def test_answers_that_do_not_fit_the_questions_are_refused(answers: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        questionnaire_response(
            PLANS["lap_cholecystectomy"],
            1,
            answers,
            patient_reference="Patient/1",
            authored=datetime.now(UTC),
        )
