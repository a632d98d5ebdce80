"""Which department of this hospital, and how soon: weighted symptom terms over the patient's words.

Each department's terms (staff-edited, seeded from `departments.yml`) are matched in the text; a
term right after 没/不/无 does not count, and a term found inside a longer matched term does not
count twice ("心内科" is not also "内科"). A department named outright counts most. Then who is ill
decides: a department that does not see this patient's sex or age gives way (a child's internal
medicine goes to 儿科), and pregnancy puts 产科 first. Chosen over jieba + TF-IDF by measurement
(docs/PERFORMANCE.md, "Triage: departments"): 95% against 86–90% first-choice accuracy, no extra
dependency, no training, and staff can read which words decided.

Emergencies are not decided here: the red-flag rules screen every message before this runs.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict

from crm_backend.triage.catalogue import (
    DepartmentProfile,
    Sex,
    TriageData,
    compile_term,
    load_triage_data,
)
from crm_backend.triage.subject import Subject, read_subject

#: A department the patient names outright ("挂消化科") weighs this much.
NAMED_WEIGHT = 5.0
#: The second department is "close" when its score is at least this share of the first's.
CLOSE_SHARE = 0.75
#: Departments below this share of the first are not offered at all.
OFFER_SHARE = 0.4
MAX_DEPARTMENTS = 3
MAX_TEXT = 500
#: Codes with a fixed role in the rules below (the hospital's data keeps these codes).
EMERGENCY, GENERAL, PAEDIATRICS, OBSTETRICS = "EMER", "GIM", "PED", "OBS"

_NEGATED = re.compile(r"(?:没|没有|不|无|未|并不|不是|否认)$")
_ASKING = re.compile(r"(?:是不是|是不|有没有|有没|会不会|要不要|算不算)$")
_FULL_WIDTH = str.maketrans({chr(c): chr(c - 0xFEE0) for c in range(0xFF01, 0xFF5F)} | {"\u3000": " "})

NOT_A_DIAGNOSIS = "以上只是根据您的描述给出的就诊建议，不是诊断，请以医生的判断为准。"
URGENT_ADVICE = "建议今天就到急诊科或当天门诊就诊；如果症状突然加重，请立即拨打120。"


class Level(enum.StrEnum):
    URGENT = "urgent"
    ROUTINE = "routine"
    SELF_CARE = "self_care"


class DepartmentChoice(BaseModel):
    model_config = ConfigDict(frozen=True)

    code: str
    name: str
    score: float
    #: The patient's own words that pointed here.
    matched: tuple[str, ...]


class Recommendation(BaseModel):
    """Best first, 1–3 departments, with how soon and, when two are close, one question to ask."""

    model_config = ConfigDict(frozen=True)

    departments: tuple[DepartmentChoice, ...]
    #: One line for the patient, e.g. "肚子疼伴拉肚子，建议看消化内科（肠胃科）".
    reason: str
    level: Level
    #: Self-care advice with when to see a doctor, or what "urgent" means.
    advice: str | None = None
    #: The first two departments are close: ask `question` before recommending.
    close: bool = False
    question: str | None = None
    #: False when no symptom term matched: the dialogue should ask the patient to say more.
    understood: bool = True
    #: The triage data version the decision used (stored with it for review).
    version: str
    age_years: int | None = None
    sex: Sex | None = None
    pregnant: bool = False

    def patient_text(self) -> str:
        """The answer as the patient reads it (without the booking offer the dialogue adds)."""
        parts = [self.reason + "。"]
        if self.advice:
            parts.append(self.advice)
        parts.append(NOT_A_DIAGNOSIS)
        return "\n".join(parts)


@dataclass(slots=True)
class _Hit:
    start: int
    end: int
    code: str
    term: str
    weight: float
    #: The department was named ("挂皮肤科"), not described.
    named: bool = False


#: Per department code: its score and the hits behind it.
Ranked = dict[str, tuple[float, list[_Hit]]]


def normalise(text: str) -> str:
    return text[:MAX_TEXT].translate(_FULL_WIDTH).casefold()


def _negated(text: str, start: int) -> bool:
    """ "没有发烧" is not a fever; "是不是阑尾炎", "有没有发烧" ask, they do not deny."""
    before = text[max(0, start - 4) : start]
    return bool(_NEGATED.search(before)) and not _ASKING.search(before)


def _hits(text: str, departments: Sequence[DepartmentProfile]) -> list[_Hit]:
    found: list[_Hit] = []
    for department in departments:
        for term in department.terms:
            for match in compile_term(term.term).finditer(text):
                if not _negated(text, match.start()):
                    found.append(_Hit(match.start(), match.end(), department.code, term.term, term.weight))
        for name in {department.name, *department.aliases}:
            for match in re.finditer(re.escape(name.casefold()), text):
                found.append(
                    _Hit(match.start(), match.end(), department.code, name, NAMED_WEIGHT, named=True)
                )
    # A hit inside a longer one is the same words read twice ("内科" in "心内科"): keep the longer.
    found.sort(key=lambda h: (h.start - h.end, -h.weight))
    kept: list[_Hit] = []
    for hit in found:
        if not any(
            k.start <= hit.start and hit.end <= k.end and k.end - k.start > hit.end - hit.start for k in kept
        ):
            kept.append(hit)
    return kept


def _scores(hits: list[_Hit]) -> Ranked:
    """Per department: the sum of its distinct terms' weights, and the hits in reading order."""
    best: dict[tuple[str, str], _Hit] = {}
    for hit in hits:
        key = (hit.code, hit.term)
        if key not in best or hit.weight > best[key].weight:
            best[key] = hit
    scores: Ranked = {}
    for hit in sorted(best.values(), key=lambda h: h.start):
        total, its = scores.get(hit.code, (0.0, []))
        scores[hit.code] = (total + hit.weight, [*its, hit])
    return scores


def _fits(department: DepartmentProfile, subject: Subject) -> bool:
    """Whether the department sees this patient; of unknown age, the patient is taken as an adult
    (the one writing, as a rule), so 儿科 needs a child named or the age known."""
    if subject.sex is not None and department.sex is not None and department.sex != subject.sex:
        return False
    if subject.age_years is None:
        return department.max_age is None
    return department.sees_age(subject.age_years)


def _words(text: str, hits: list[_Hit]) -> tuple[str, ...]:
    """The patient's own words behind the hits, strongest first where two overlap, in reading order."""
    chosen: list[_Hit] = []
    for hit in sorted(hits, key=lambda h: (h.named, -h.weight, h.end - h.start)):
        if not any(hit.start < c.end and c.start < hit.end for c in chosen):
            chosen.append(hit)
    return tuple(dict.fromkeys(text[h.start : h.end] for h in sorted(chosen, key=lambda h: h.start)))


def _described(text: str, hits: list[_Hit]) -> tuple[str, ...]:
    return _words(text, [h for h in hits if not h.named])


def _level(
    text: str, data: TriageData, top: str, hits: list[_Hit], subject: Subject
) -> tuple[Level, str | None]:
    def found(words: Sequence[str]) -> list[re.Match[str]]:
        return [
            m for word in words for m in compile_term(word).finditer(text) if not _negated(text, m.start())
        ]

    if top == EMERGENCY or found(data.levels.urgent):
        return Level.URGENT, URGENT_ADVICE
    if subject.is_child or subject.pregnant or found(data.levels.long_standing) or not hits:
        return Level.ROUTINE, None
    for group in data.levels.self_care:
        covered = {i for m in found(group.terms) for i in range(m.start(), m.end())}
        if covered and all(any(i in covered for i in range(h.start, h.end)) for h in hits):
            return Level.SELF_CARE, group.advice
    return Level.ROUTINE, None


def _question(data: TriageData, first: DepartmentProfile, second: DepartmentProfile) -> str:
    known = data.question_between(first.code, second.code)
    if known:
        return known
    return (
        f"为了推荐更合适的科室，想再确认一下：您的情况更接近哪一种？"
        f"1. {first.description}（{first.name}）；2. {second.description}（{second.name}）"
    )


def _reason(words: tuple[str, ...], department: DepartmentProfile, subject: Subject) -> str:
    if department.code == OBSTETRICS and subject.pregnant:
        said = "伴".join(words[:2]) + "，" if words else ""
        return f"{said}怀孕期间建议先看{department.name}，由产科医生评估或安排转诊"
    if not words:
        return f"按您说的，建议看{department.name}"
    said = "伴".join(words[:2])
    if department.code == PAEDIATRICS and subject.is_child:
        return f"{said}，14岁以下的孩子建议看{department.name}"
    return f"{said}，建议看{department.name}"


def _for_this_patient(
    scores: Ranked, subject: Subject, by_code: dict[str, DepartmentProfile]
) -> tuple[Ranked, bool]:
    """The scores after who is ill has had its say, and whether any of the words were understood.

    A department that does not see this patient drops out; a child's goes to 儿科 (its words then
    point there). Pregnancy puts 产科 above everything but the emergency department."""
    ranked: Ranked = {}
    for code, (score, its) in scores.items():
        if _fits(by_code[code], subject):
            target = code
        elif subject.is_child and PAEDIATRICS in by_code:
            target = PAEDIATRICS
        else:
            continue
        old, old_hits = ranked.get(target, (0.0, []))
        ranked[target] = (old + score, old_hits + its)
    understood = bool(ranked)
    if subject.pregnant and OBSTETRICS in by_code and _fits(by_code[OBSTETRICS], subject):
        leader = max(ranked, key=lambda c: ranked[c][0], default=None)
        if leader != EMERGENCY:
            top = ranked[leader][0] if leader else 0.0
            old, old_hits = ranked.get(OBSTETRICS, (0.0, []))
            ranked[OBSTETRICS] = (max(old, top + 1), old_hits)
    return ranked, understood


def recommend(
    text: str,
    *,
    age_years: int | None = None,
    sex: Sex | str | None = None,
    pregnant: bool | None = None,
    departments: Sequence[DepartmentProfile] | None = None,
    data: TriageData | None = None,
) -> Recommendation:
    """Best-first departments for a patient's words, how soon to go, and a question when two are close.

    `departments` are this hospital's (from the database, as staff edited them); without them the
    reviewed data file's are used. Age, sex and pregnancy the dialogue knows win over the words.
    """
    data = data or load_triage_data()
    if departments is not None:
        data = data.with_departments(departments)
    by_code = {d.code: d for d in data.departments}
    words = normalise(text)
    subject = read_subject(words, age_years=age_years, sex=sex, pregnant=pregnant)
    hits = _hits(words, data.departments)
    scores = _scores(hits)

    ranked, understood = _for_this_patient(scores, subject, by_code)
    if not ranked:
        fallback = PAEDIATRICS if subject.is_child and PAEDIATRICS in by_code else GENERAL
        ranked[fallback if fallback in by_code else data.departments[0].code] = (0.0, [])

    order = sorted(ranked, key=lambda c: (-ranked[c][0], -len(ranked[c][1])))
    top_score = ranked[order[0]][0]
    chosen = [c for c in order if ranked[c][0] >= OFFER_SHARE * top_score][:MAX_DEPARTMENTS]
    choices = tuple(
        DepartmentChoice(
            code=c, name=by_code[c].name, score=round(ranked[c][0], 2), matched=_words(words, ranked[c][1])
        )
        for c in chosen
    )
    first = by_code[chosen[0]]
    # No question when the rules already decided: pregnancy, a child's 儿科, the emergency department.
    overridden = (
        not understood
        or first.code == EMERGENCY
        or (subject.pregnant and first.code == OBSTETRICS)
        or (subject.is_child and first.code == PAEDIATRICS)
    )
    close = (
        len(chosen) > 1
        and not overridden
        and ranked[chosen[1]][0] >= CLOSE_SHARE * top_score
        and top_score > 0
    )
    level, advice = _level(words, data, first.code, [h for c in chosen for h in ranked[c][1]], subject)
    if not understood:
        reason = f"从您的描述还判断不出具体科室，可以先看{first.name}，医生会帮您转到合适的专科"
    else:
        # Pregnancy decided the department: the reason names the symptoms, not the pregnancy again.
        reasons = [c for c in chosen if c != OBSTETRICS] if overridden and subject.pregnant else chosen[:1]
        reason = _reason(_described(words, [h for c in reasons for h in ranked[c][1]]), first, subject)
    return Recommendation(
        departments=choices,
        reason=reason,
        level=level,
        advice=advice,
        close=close,
        question=_question(data, first, by_code[chosen[1]]) if close else None,
        understood=understood,
        version=data.version,
        age_years=subject.age_years,
        sex=subject.sex,
        pregnant=subject.pregnant,
    )
