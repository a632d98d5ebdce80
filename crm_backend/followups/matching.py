"""Which plan a discharged patient's procedure belongs to: by code, by name or one of its synonyms.

HIS texts vary ("腹腔镜胆囊切除术", "腹腔镜下胆囊切除术 (LC)"), so names are compared normalised
(plans.normalise_procedure); a code (ICD-9-CM-3 "51.23") matches on the code alone. A name is also
found inside a longer HIS text, longest name first, so "胆囊切除术" never wins over
"腹腔镜胆囊切除术" when both are known.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from crm_backend.followups import plan_service
from crm_backend.followups.models import FollowupPlanVersion
from crm_backend.followups.plan_service import definition_of
from crm_backend.followups.plans import PlanDefinition, normalise_procedure

#: A known name shorter than this is matched only exactly, never inside a longer text.
MIN_CONTAINED = 4


@dataclass(frozen=True, slots=True)
class PerformedProcedure:
    """A procedure as the HIS or a CSV row names it."""

    text: str
    codes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PlanMatch:
    version: FollowupPlanVersion
    definition: PlanDefinition
    #: The procedure that matched, in the HIS's words.
    procedure: PerformedProcedure


async def current_versions(session: AsyncSession) -> list[tuple[FollowupPlanVersion, PlanDefinition]]:
    """The newest version of every active plan with its definition (plan_service's order: by code)."""
    return [(version, definition_of(version)) for version in await plan_service.current_versions(session)]


def _code(value: str) -> str:
    return value.strip().lower()


def match_plan(
    plans: list[tuple[FollowupPlanVersion, PlanDefinition]], procedures: list[PerformedProcedure]
) -> PlanMatch | None:
    """The first procedure (in the given order) that a plan covers: exact code or name first, then
    a known name inside the text."""
    names: list[tuple[str, int]] = []
    codes: dict[str, int] = {}
    for index, (_, definition) in enumerate(plans):
        for known in definition.procedures:
            for name in (known.text, *known.synonyms):
                names.append((normalise_procedure(name), index))
            for code in known.codes:
                codes.setdefault(_code(code.split("|")[-1]), index)
    exact = dict(reversed(names))  # the first plan naming it wins
    contained = sorted(
        ((name, index) for name, index in names if len(name) >= MIN_CONTAINED), key=lambda item: -len(item[0])
    )
    for procedure in procedures:
        for code in procedure.codes:
            if _code(code) in codes:
                return _found(plans, codes[_code(code)], procedure)
        text = normalise_procedure(procedure.text)
        if text and text in exact:
            return _found(plans, exact[text], procedure)
    for procedure in procedures:
        text = normalise_procedure(procedure.text)
        for name, index in contained:
            if text and name in text:
                return _found(plans, index, procedure)
    return None


def _found(
    plans: list[tuple[FollowupPlanVersion, PlanDefinition]], index: int, procedure: PerformedProcedure
) -> PlanMatch:
    version, definition = plans[index]
    return PlanMatch(version, definition, procedure)


def known_procedures(plans: list[tuple[FollowupPlanVersion, PlanDefinition]]) -> list[dict[str, object]]:
    """What a refusal names: each plan with the procedures (and codes) it applies to."""
    return [
        {
            "plan": definition.code,
            "procedures": [known.text for known in definition.procedures],
            "codes": [code for known in definition.procedures for code in known.codes],
        }
        for _, definition in plans
    ]
