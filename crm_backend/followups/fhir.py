"""Follow-up plans as FHIR R4B: a plan version exports as Questionnaires, imports back, and a
check-in's answers export as a QuestionnaireResponse.

One Questionnaire per time point (FHIR wants linkIds unique within a Questionnaire, and each time
point asks mostly the same questions, whose linkId is the question's code), collected in a Bundle of
type `collection` for the whole plan. The plan's own data travels in standard elements where FHIR has
one and in CareBridge extensions (under EXTENSION_BASE) where it has not:

- plan code: `identifier` (system PLAN_SYSTEM); name: `title`; review note: `purpose`;
  procedures: `useContext` (code `focus`, CodeableConcept text + ICD-9-CM codes; synonyms in the
  `followup-synonym` extension); anchor and time point (day, hour): `followup-anchor`,
  `followup-time-point` extensions.
- questions: scale → integer, number → decimal, yes/no → boolean, single/multiple choice →
  choice (repeats for multiple), free text → text; choices as answerOption codings (synonyms in the
  `followup-synonym` extension); unit: `questionnaire-unit`; range: `minValue` / `maxValue`; the
  re-ask hint: `entryFormat`; conditions: enableWhen; flag rules and their advice: the complex
  `followup-flag-rule` extension.

Export then import gives back an equal PlanDefinition. Import refuses what it cannot read faithfully
(nested groups, other item types, unknown CareBridge extensions) with a FhirError naming the problem;
PlanDefinition's own checks (a pydantic ValidationError) then apply as for any plan.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.extension import Extension
from fhir.resources.R4B.questionnaire import Questionnaire, QuestionnaireItem
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse
from pydantic import ValidationError

from crm_backend.followups.plans import (
    Choice,
    EnableWhen,
    FlagRule,
    PlanDefinition,
    ProcedureMatch,
    Question,
    QuestionType,
    TimePoint,
)

BASE = "https://carebridge.example/fhir"
EXTENSION_BASE = f"{BASE}/StructureDefinition"
PLAN_SYSTEM = f"{BASE}/followup-plan"
ANSWER_SYSTEM = f"{BASE}/CodeSystem/followup-answer"
EXT_ANCHOR = f"{EXTENSION_BASE}/followup-anchor"
EXT_TIME_POINT = f"{EXTENSION_BASE}/followup-time-point"
EXT_FLAG_RULE = f"{EXTENSION_BASE}/followup-flag-rule"
EXT_SYNONYM = f"{EXTENSION_BASE}/followup-synonym"
EXT_UNIT = "http://hl7.org/fhir/StructureDefinition/questionnaire-unit"
EXT_MIN = "http://hl7.org/fhir/StructureDefinition/minValue"
EXT_MAX = "http://hl7.org/fhir/StructureDefinition/maxValue"
EXT_ENTRY_FORMAT = "http://hl7.org/fhir/StructureDefinition/entryFormat"
UCUM = "http://unitsofmeasure.org"
#: HL7's system for ICD-9-CM, whose volume 3 holds the procedure codes (51.23, 81.54, …).
ICD9_CM = "http://hl7.org/fhir/sid/icd-9-cm"
USAGE_CONTEXT_TYPE = "http://terminology.hl7.org/CodeSystem/usage-context-type"
#: Units patients read, and their UCUM codes for systems that compute with them.
_UCUM_CODES = {"°C": "Cel", "℃": "Cel", "kg": "kg", "mmHg": "mm[Hg]", "次/分": "/min"}
#: The most time points (Questionnaires) and questions an import takes.
MAX_TIME_POINTS = 40
MAX_QUESTIONS = 60

_FHIR_TYPE = {
    QuestionType.scale: "integer",
    QuestionType.number: "decimal",
    QuestionType.yes_no: "boolean",
    QuestionType.single_choice: "choice",
    QuestionType.multiple_choice: "choice",
    QuestionType.free_text: "text",
}


class FhirError(ValueError):
    """FHIR we cannot read faithfully as a follow-up plan; the message names the problem."""


# --- export -------------------------------------------------------------------------------------


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else float(value)


def _ext(url: str, **value: Any) -> dict[str, Any]:
    return {"url": url, **value}


def _flag_rule_extension(rule: FlagRule) -> dict[str, Any]:
    parts: list[dict[str, Any]] = [_ext("flag", valueCode=rule.flag.value)]
    if rule.at_least is not None:
        parts.append(_ext("atLeast", valueDecimal=rule.at_least))
    if rule.at_most is not None:
        parts.append(_ext("atMost", valueDecimal=rule.at_most))
    if rule.equals is not None:
        parts.append(_ext("equals", valueBoolean=rule.equals))
    parts.extend(_ext("anyOf", valueCode=code) for code in rule.any_of)
    if rule.advice:
        parts.append(_ext("advice", valueString=rule.advice))
    return {"url": EXT_FLAG_RULE, "extension": parts}


def _enable_when(condition: EnableWhen, target: Question) -> list[dict[str, Any]]:
    if condition.equals is not None:
        return [{"question": condition.question, "operator": "=", "answerBoolean": condition.equals}]
    if condition.at_least is not None:
        if target.type == QuestionType.scale and float(condition.at_least).is_integer():
            answer: dict[str, Any] = {"answerInteger": int(condition.at_least)}
        else:
            answer = {"answerDecimal": condition.at_least}
        return [{"question": condition.question, "operator": ">=", **answer}]
    choices = {choice.code: choice for choice in target.choices}
    return [
        {
            "question": condition.question,
            "operator": "=",
            "answerCoding": {"system": ANSWER_SYSTEM, "code": code, "display": choices[code].text},
        }
        for code in condition.any_of
    ]


def _item(question: Question, earlier: Mapping[str, Question]) -> dict[str, Any]:
    extensions: list[dict[str, Any]] = []
    if question.unit:
        coding: dict[str, Any] = {"display": question.unit}
        if question.unit in _UCUM_CODES:
            coding = {"system": UCUM, "code": _UCUM_CODES[question.unit], "display": question.unit}
        extensions.append(_ext(EXT_UNIT, valueCoding=coding))
    integer = question.type == QuestionType.scale
    for url, bound in ((EXT_MIN, question.minimum), (EXT_MAX, question.maximum)):
        if bound is not None:
            value = {"valueInteger": int(bound)} if integer else {"valueDecimal": bound}
            extensions.append(_ext(url, **value))
    if question.hint:
        extensions.append(_ext(EXT_ENTRY_FORMAT, valueString=question.hint))
    extensions.extend(_flag_rule_extension(rule) for rule in question.flags)
    item: dict[str, Any] = {"linkId": question.code, "text": question.text, "type": _FHIR_TYPE[question.type]}
    if extensions:
        item["extension"] = extensions
    if question.type == QuestionType.multiple_choice:
        item["repeats"] = True
    if question.choices:
        item["answerOption"] = [_answer_option(choice) for choice in question.choices]
    if question.enable_when is not None:
        conditions = _enable_when(question.enable_when, earlier[question.enable_when.question])
        item["enableWhen"] = conditions
        if len(conditions) > 1:
            item["enableBehavior"] = "any"
    return item


def _answer_option(choice: Choice) -> dict[str, Any]:
    option: dict[str, Any] = {
        "valueCoding": {"system": ANSWER_SYSTEM, "code": choice.code, "display": choice.text}
    }
    if choice.synonyms:
        option["extension"] = [_ext(EXT_SYNONYM, valueString=word) for word in choice.synonyms]
    return option


def _use_context(procedure: ProcedureMatch) -> dict[str, Any]:
    concept: dict[str, Any] = {"text": procedure.text}
    if procedure.codes:
        concept["coding"] = [{"system": ICD9_CM, "code": code} for code in procedure.codes]
    context: dict[str, Any] = {
        "code": {"system": USAGE_CONTEXT_TYPE, "code": "focus"},
        "valueCodeableConcept": concept,
    }
    if procedure.synonyms:
        context["extension"] = [_ext(EXT_SYNONYM, valueString=word) for word in procedure.synonyms]
    return context


def _computer_name(code: str, day: int) -> str:
    return "".join(part.capitalize() for part in code.split("_")) + f"Day{day}"


def questionnaire_url(code: str, day: int) -> str:
    return f"{BASE}/Questionnaire/{code}-day{day}"


def questionnaire(definition: PlanDefinition, index: int, *, version: int | None = None) -> dict[str, Any]:
    """The Questionnaire of the plan's time point `index`, as validated FHIR R4B JSON."""
    return _validated(Questionnaire, _questionnaire(definition, index, version=version))


def _questionnaire(definition: PlanDefinition, index: int, *, version: int | None) -> dict[str, Any]:
    point = definition.time_points[index]
    earlier: dict[str, Question] = {}
    items = []
    for question in point.questionnaire.questions:
        items.append(_item(question, earlier))
        earlier[question.code] = question
    resource: dict[str, Any] = {
        "resourceType": "Questionnaire",
        "id": f"{definition.code}-day{point.day}".replace("_", "-"),
        "extension": [
            _ext(EXT_ANCHOR, valueCode=definition.anchor),
            {
                "url": EXT_TIME_POINT,
                "extension": [_ext("day", valueInteger=point.day), _ext("hour", valueInteger=point.hour)],
            },
        ],
        "url": questionnaire_url(definition.code, point.day),
        "identifier": [{"system": PLAN_SYSTEM, "value": definition.code}],
        "name": _computer_name(definition.code, point.day),
        "title": definition.name,
        "status": "active",
        "subjectType": ["Patient"],
        "useContext": [_use_context(procedure) for procedure in definition.procedures],
        "item": items,
    }
    if version is not None:
        resource["version"] = str(version)
    if definition.review_note:
        resource["purpose"] = definition.review_note
    return resource


def plan_bundle(definition: PlanDefinition, *, version: int | None = None) -> dict[str, Any]:
    """The whole plan: a `collection` Bundle of one Questionnaire per time point, in order."""
    entries = []
    for index, point in enumerate(definition.time_points):
        resource = _questionnaire(definition, index, version=version)
        full_url = questionnaire_url(definition.code, point.day)
        entries.append({"fullUrl": full_url, "resource": resource})
    return _validated(Bundle, {"resourceType": "Bundle", "type": "collection", "entry": entries})


def _validated(model: Any, data: dict[str, Any]) -> dict[str, Any]:
    """`data` once checked by fhir.resources (R4B): what we export is valid FHIR. (Dumping the
    model instead would take twice as long and give the same JSON.)"""
    model.model_validate(data)
    return data


# --- import -------------------------------------------------------------------------------------


def _fhir_message(error: ValidationError) -> str:
    problems = []
    for problem in error.errors()[:5]:
        where = ".".join(str(part) for part in problem["loc"]) or "(top)"
        problems.append(f"{where}: {problem['msg']}")
    return "not valid FHIR R4B: " + "; ".join(problems)


def plan_from_fhir(data: Any) -> PlanDefinition:
    """A plan from a Bundle of Questionnaires (one per time point) or one Questionnaire.

    FhirError: not FHIR R4B, or not something a plan can hold; pydantic ValidationError: read, but
    not a valid plan (PlanDefinition's checks)."""
    if not isinstance(data, dict):
        raise FhirError("expected a FHIR resource (a JSON object)")
    kind = data.get("resourceType")
    try:
        if kind == "Bundle":
            bundle = Bundle.model_validate(data)
            resources = [entry.resource for entry in bundle.entry or []]
        elif kind == "Questionnaire":
            resources = [Questionnaire.model_validate(data)]
        else:
            raise FhirError(f"expected a Bundle of Questionnaires or a Questionnaire, not {kind!r}")
    except ValidationError as exc:
        raise FhirError(_fhir_message(exc)) from exc
    except RecursionError as exc:
        raise FhirError("the resource is nested too deeply") from exc
    if not resources:
        raise FhirError("the Bundle holds no Questionnaire")
    if len(resources) > MAX_TIME_POINTS:
        raise FhirError(f"at most {MAX_TIME_POINTS} Questionnaires (time points) per plan")
    for position, resource in enumerate(resources):
        if not isinstance(resource, Questionnaire):
            name = type(resource).__name__
            raise FhirError(f"Bundle entry {position} is a {name}; a plan's entries are Questionnaires")
    return _plan(resources)  # type: ignore[arg-type]


def _plan(questionnaires: list[Questionnaire]) -> PlanDefinition:
    heads = [_plan_head(q) for q in questionnaires]
    for position, head in enumerate(heads[1:], start=1):
        if head != heads[0]:
            raise FhirError(
                f"Questionnaire {position} describes another plan (code, title, purpose, anchor or "
                "procedures differ from the first)"
            )
    code, name, review_note, anchor, procedures = heads[0]
    time_points = [_time_point(q, position) for position, q in enumerate(questionnaires)]
    return PlanDefinition.model_validate(
        {
            "code": code,
            "name": name,
            "anchor": anchor,
            "review_note": review_note,
            "procedures": procedures,
            "time_points": time_points,
        }
    )


def _no_modifiers(q: Questionnaire) -> None:
    """A modifierExtension changes what an element means; one we ignored would change the plan."""
    if q.modifierExtension:
        raise FhirError("modifierExtension on a Questionnaire is not supported")
    for item in q.item or []:
        if item.modifierExtension:
            raise FhirError(f"item {item.linkId}: modifierExtension is not supported")


def _plan_head(q: Questionnaire) -> tuple[Any, ...]:
    _no_modifiers(q)
    codes = [i.value for i in q.identifier or [] if i.system == PLAN_SYSTEM]
    if len(codes) != 1:
        raise FhirError(
            f"a Questionnaire needs exactly one identifier with system {PLAN_SYSTEM} (the plan code)"
        )
    if not q.title:
        raise FhirError("a Questionnaire needs a title (the plan's name)")
    _only_known_extensions(q.extension, {EXT_ANCHOR, EXT_TIME_POINT}, "Questionnaire")
    anchors = [e.valueCode for e in q.extension or [] if e.url == EXT_ANCHOR]
    if len(anchors) > 1:
        raise FhirError("more than one followup-anchor extension")
    procedures = [_procedure(context, n) for n, context in enumerate(q.useContext or [])]
    if not procedures:
        raise FhirError("a Questionnaire needs useContext entries (code focus) naming the procedures")
    return (codes[0], q.title, q.purpose or "", anchors[0] if anchors else "discharge", procedures)


def _procedure(context: Any, position: int) -> dict[str, Any]:
    if context.code is None or context.code.code != "focus":
        raise FhirError(f"useContext {position}: only code 'focus' (a procedure or diagnosis) is read")
    concept = context.valueCodeableConcept
    if concept is None or not concept.text:
        raise FhirError(f"useContext {position}: needs valueCodeableConcept with text (the procedure name)")
    _only_known_extensions(context.extension, {EXT_SYNONYM}, f"useContext {position}")
    return {
        "text": concept.text,
        "synonyms": [e.valueString for e in context.extension or [] if e.url == EXT_SYNONYM],
        "codes": [coding.code for coding in concept.coding or [] if coding.code],
    }


def _only_known_extensions(extensions: list[Extension] | None, known: set[str], where: str) -> None:
    """Our own extensions are read exactly; one we do not know would be lost, so it is refused."""
    for extension in extensions or []:
        if extension.url.startswith(EXTENSION_BASE) and extension.url not in known:
            raise FhirError(f"{where}: unknown CareBridge extension {extension.url}")


def _time_point(q: Questionnaire, position: int) -> dict[str, Any]:
    points = [e for e in q.extension or [] if e.url == EXT_TIME_POINT]
    if len(points) != 1:
        raise FhirError(f"Questionnaire {position}: needs one followup-time-point extension (day, hour)")
    parts = _parts(points[0], {"day", "hour"}, f"Questionnaire {position} time point")
    if "day" not in parts:
        raise FhirError(f"Questionnaire {position}: the time point has no day")
    point: dict[str, Any] = {"day": _one(parts, "day", "valueInteger", position)}
    if "hour" in parts:
        point["hour"] = _one(parts, "hour", "valueInteger", position)
    items = q.item or []
    if len(items) > MAX_QUESTIONS:
        raise FhirError(f"Questionnaire {position}: at most {MAX_QUESTIONS} questions")
    questions: list[dict[str, Any]] = []
    kinds: dict[str, QuestionType] = {}
    for item in items:
        if item.type == "display":
            continue  # shows text, asks nothing
        question = _question(item, kinds, f"Questionnaire {position} item {item.linkId}")
        kinds[question["code"]] = question["type"]
        questions.append(question)
    point["questionnaire"] = {"questions": questions}
    return point


def _parts(extension: Extension, names: set[str], where: str) -> dict[str, list[Extension]]:
    parts: dict[str, list[Extension]] = {}
    for part in extension.extension or []:
        if part.url not in names:
            raise FhirError(f"{where}: unknown part {part.url!r}")
        parts.setdefault(part.url, []).append(part)
    return parts


def _one(parts: dict[str, list[Extension]], name: str, field: str, where: Any) -> Any:
    values = parts.get(name, [])
    if len(values) != 1 or getattr(values[0], field) is None:
        raise FhirError(f"{where}: {name} must be given once, as {field}")
    return getattr(values[0], field)


def _question(item: QuestionnaireItem, kinds: Mapping[str, QuestionType], where: str) -> dict[str, Any]:
    if item.item:
        raise FhirError(f"{where}: nested items are not supported (one level of questions per time point)")
    kind = _question_type(item, where)
    _only_known_extensions(item.extension, {EXT_FLAG_RULE}, where)
    question: dict[str, Any] = {"code": item.linkId, "text": item.text or "", "type": kind}
    for extension in item.extension or []:
        if extension.url == EXT_UNIT:
            coding = extension.valueCoding
            if coding is None or not (coding.display or coding.code):
                raise FhirError(f"{where}: questionnaire-unit needs valueCoding with a display")
            question["unit"] = coding.display or coding.code
        elif extension.url in (EXT_MIN, EXT_MAX):
            value = extension.valueInteger if extension.valueInteger is not None else extension.valueDecimal
            if value is None:
                raise FhirError(f"{where}: minValue/maxValue must be valueInteger or valueDecimal")
            question["minimum" if extension.url == EXT_MIN else "maximum"] = float(value)
        elif extension.url == EXT_ENTRY_FORMAT:
            question["hint"] = extension.valueString or ""
    question["choices"] = [_choice(option, where) for option in item.answerOption or []]
    question["flags"] = [
        _flag_rule(extension, where) for extension in item.extension or [] if extension.url == EXT_FLAG_RULE
    ]
    if item.enableWhen:
        question["enable_when"] = _condition(item, kinds, where)
    return question


def _question_type(item: QuestionnaireItem, where: str) -> QuestionType:
    match item.type:
        case "integer":
            return QuestionType.scale
        case "decimal":
            return QuestionType.number
        case "boolean":
            return QuestionType.yes_no
        case "choice":
            return QuestionType.multiple_choice if item.repeats else QuestionType.single_choice
        case "string" | "text":
            return QuestionType.free_text
    raise FhirError(
        f"{where}: item type {item.type!r} is not supported "
        "(integer 0–10, decimal, boolean, choice, string or text)"
    )


def _choice(option: Any, where: str) -> dict[str, Any]:
    coding = option.valueCoding
    if coding is None or not coding.code or not coding.display:
        raise FhirError(f"{where}: each answerOption needs valueCoding with a code and a display")
    _only_known_extensions(option.extension, {EXT_SYNONYM}, where)
    return {
        "code": coding.code,
        "text": coding.display,
        "synonyms": [e.valueString for e in option.extension or [] if e.url == EXT_SYNONYM],
    }


_RULE_PARTS = {"flag", "atLeast", "atMost", "equals", "anyOf", "advice"}


def _flag_rule(extension: Extension, where: str) -> dict[str, Any]:
    parts = _parts(extension, _RULE_PARTS, f"{where} flag rule")
    rule: dict[str, Any] = {"flag": _one(parts, "flag", "valueCode", f"{where} flag rule")}
    for name, key, field in (
        ("atLeast", "at_least", "valueDecimal"),
        ("atMost", "at_most", "valueDecimal"),
        ("equals", "equals", "valueBoolean"),
        ("advice", "advice", "valueString"),
    ):
        if name in parts:
            value = _one(parts, name, field, f"{where} flag rule")
            rule[key] = float(value) if isinstance(value, Decimal) else value
    codes = [part.valueCode for part in parts.get("anyOf", [])]
    if any(code is None for code in codes):
        raise FhirError(f"{where} flag rule: anyOf must be valueCode")
    if codes:
        rule["any_of"] = codes
    return rule


def _condition(item: QuestionnaireItem, kinds: Mapping[str, QuestionType], where: str) -> dict[str, Any]:
    conditions = item.enableWhen or []
    targets = {condition.question for condition in conditions}
    if len(targets) != 1:
        raise FhirError(f"{where}: enableWhen may name only one earlier question")
    target = targets.pop()
    if len(conditions) > 1 and item.enableBehavior != "any":
        raise FhirError(f"{where}: several enableWhen conditions must use enableBehavior 'any'")
    first = conditions[0]
    if first.answerBoolean is not None:
        if len(conditions) != 1 or first.operator != "=":
            raise FhirError(f"{where}: a yes/no condition is one enableWhen with operator '='")
        return {"question": target, "equals": first.answerBoolean}
    if first.answerInteger is not None or first.answerDecimal is not None:
        if len(conditions) != 1 or first.operator != ">=":
            raise FhirError(f"{where}: a number condition is one enableWhen with operator '>='")
        value = first.answerInteger if first.answerInteger is not None else first.answerDecimal
        return {"question": target, "at_least": float(value)}  # type: ignore[arg-type]
    codes = []
    for condition in conditions:
        if condition.answerCoding is None or not condition.answerCoding.code or condition.operator != "=":
            raise FhirError(f"{where}: enableWhen must be '=' a boolean or coding, or '>=' a number")
        codes.append(condition.answerCoding.code)
    if target in kinds and kinds[target] not in (QuestionType.single_choice, QuestionType.multiple_choice):
        raise FhirError(
            f"{where}: enableWhen compares a coding with {target}, which is not a choice question"
        )
    return {"question": target, "any_of": codes}


# --- answers ------------------------------------------------------------------------------------


def questionnaire_response(
    definition: PlanDefinition,
    day: int,
    answers: Mapping[str, Any],
    *,
    patient_reference: str,
    authored: datetime,
    version: int | None = None,
) -> dict[str, Any]:
    """A check-in's answers (question code → value, as the question's type says) as a completed
    FHIR R4B QuestionnaireResponse to the time point's Questionnaire, in the questionnaire's order.
    An empty multiple-choice answer ("none of them") is an item without answers."""
    if authored.tzinfo is None:
        raise ValueError("authored must carry a time zone")
    if not re.fullmatch(r"[A-Za-z]+/[A-Za-z0-9\-.]{1,64}", patient_reference):
        raise ValueError("patient_reference must be a FHIR reference such as 'Patient/123'")
    point = _point_on_day(definition, day)
    questions = {question.code: question for question in point.questionnaire.questions}
    unknown = sorted(set(answers) - set(questions))
    if unknown:
        raise ValueError(f"no question {', '.join(unknown)} on day {day} of plan {definition.code}")
    items = []
    for question in point.questionnaire.questions:
        if question.code in answers:
            item: dict[str, Any] = {"linkId": question.code, "text": question.text}
            values = _answer_values(question, answers[question.code])
            if values:
                item["answer"] = values
            items.append(item)
    canonical = questionnaire_url(definition.code, day) + (f"|{version}" if version is not None else "")
    resource = {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": canonical,
        "status": "completed",
        "subject": {"reference": patient_reference},
        "authored": authored.isoformat(),
        "item": items,
    }
    return _validated(QuestionnaireResponse, resource)


def _point_on_day(definition: PlanDefinition, day: int) -> TimePoint:
    for point in definition.time_points:
        if point.day == day:
            return point
    raise ValueError(f"plan {definition.code} has no time point on day {day}")


def _answer_values(question: Question, value: Any) -> list[dict[str, Any]]:
    wrong = ValueError(f"{question.code}: {value!r} is not a {question.type.value} answer")
    match question.type:
        case QuestionType.scale:
            if isinstance(value, bool) or not isinstance(value, int):
                raise wrong
            return [{"valueInteger": value}]
        case QuestionType.number:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise wrong
            return [{"valueDecimal": _number(value)}]
        case QuestionType.yes_no:
            if not isinstance(value, bool):
                raise wrong
            return [{"valueBoolean": value}]
        case QuestionType.free_text:
            if not isinstance(value, str):
                raise wrong
            return [{"valueString": value}] if value else []
    choices = {choice.code: choice for choice in question.choices}
    codes = value if question.type == QuestionType.multiple_choice else [value]
    if not isinstance(codes, list) or any(code not in choices for code in codes):
        raise wrong
    return [
        {"valueCoding": {"system": ANSWER_SYSTEM, "code": code, "display": choices[code].text}}
        for code in codes
    ]
