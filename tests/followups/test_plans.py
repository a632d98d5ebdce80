"""Plan definitions: bad plans are refused with a message naming the problem; a change is a new
version and the earlier one stays as it was."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest
from pydantic import ValidationError

from crm_backend.database.core import Database
from crm_backend.followups.plan_service import (
    PlanConflict,
    change_plan,
    create_plan,
    current_versions,
    definition_of,
    get_version,
    plan_versions,
    set_active,
)
from crm_backend.followups.plans import PlanDefinition

_serial = itertools.count(1)


def small_plan(code: str, **changes: Any) -> dict[str, Any]:
    """A two-question plan as staff would send it (JSON)."""
    plan: dict[str, Any] = {
        "code": code,
        "name": "疝修补术后随访",
        "procedures": [{"text": "腹股沟疝修补术", "codes": ["53.0"]}],
        "time_points": [
            {
                "day": 2,
                "questionnaire": {
                    "questions": [
                        {
                            "code": "pain",
                            "text": "疼痛几分？",
                            "type": "scale",
                            "flags": [{"flag": "amber", "at_least": 4}],
                        },
                        {"code": "concerns", "text": "还有什么想问的吗？", "type": "free_text"},
                    ]
                },
            }
        ],
        **changes,
    }
    return plan


def _question(plan: dict[str, Any], **question: Any) -> dict[str, Any]:
    plan["time_points"][0]["questionnaire"]["questions"].insert(1, question)
    return plan


BAD_PLANS = [
    (
        "temperature_without_range",
        lambda: _question(small_plan("bad_a"), code="temp", text="体温？", type="number", unit="°C"),
        "needs minimum and maximum",
    ),
    (
        "scale_not_0_10",
        lambda: _question(small_plan("bad_b"), code="nrs", text="疼吗？", type="scale", minimum=1, maximum=5),
        "a scale question is 0–10",
    ),
    (
        "rule_names_missing_choice",
        lambda: _question(
            small_plan("bad_c"),
            code="wound",
            text="伤口？",
            type="single_choice",
            choices=[{"code": "ok", "text": "好"}, {"code": "red", "text": "红"}],
            flags=[{"flag": "red", "any_of": ["pus"], "advice": "去医院"}],
        ),
        "names a choice the question does not have",
    ),
    (
        "enable_when_later_question",
        lambda: _question(
            small_plan("bad_d"),
            code="discharge",
            text="流脓吗？",
            type="yes_no",
            enable_when={"question": "concerns", "equals": True},
        ),
        "enable_when must name an earlier question",
    ),
    (
        "enable_when_equals_on_a_scale",
        lambda: _question(
            small_plan("bad_h"),
            code="bad_pain_follow_up",
            text="疼得睡不着吗？",
            type="yes_no",
            enable_when={"question": "pain", "equals": True},
        ),
        "enable_when equals needs a yes/no question",
    ),
    (
        "days_out_of_order",
        lambda: small_plan(
            "bad_e",
            time_points=[
                {**small_plan("x")["time_points"][0], "day": 7},
                {**small_plan("x")["time_points"][0], "day": 3},
            ],
        ),
        "time points must be on distinct days, in order",
    ),
    (
        "rule_with_two_tests",
        lambda: _question(
            small_plan("bad_f"),
            code="fever",
            text="发烧吗？",
            type="yes_no",
            flags=[{"flag": "red", "equals": True, "at_least": 1}],
        ),
        "tests exactly one of",
    ),
    ("no_procedures", lambda: small_plan("bad_g", procedures=[]), "procedures"),
    ("bad_code", lambda: small_plan("Bad Code"), "code"),
]


@pytest.mark.parametrize(
    ("plan", "message"), [(p, m) for _, p, m in BAD_PLANS], ids=[n for n, _, _ in BAD_PLANS]
)
def test_bad_plans_are_refused_with_a_clear_message(plan: Any, message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        PlanDefinition.model_validate(plan())
    assert message in str(caught.value)


async def test_a_change_is_a_new_version_and_the_old_one_stays(db: Database) -> None:
    code = f"hernia_{next(_serial)}"
    first = PlanDefinition.model_validate(small_plan(code))
    async with db.sessions() as session:
        plan, version1 = await create_plan(session, first, staff_id=None)
        await session.commit()
    assert version1.version == 1
    stricter = small_plan(code, name="疝修补术后随访（新版）")
    stricter["time_points"][0]["questionnaire"]["questions"][0]["flags"] = [
        {"flag": "amber", "at_least": 3},
        {"flag": "red", "at_least": 6, "advice": "请按医嘱服止痛药，今天到门诊就诊。"},
    ]
    async with db.sessions() as session:
        version2, changed = await change_plan(
            session, plan.id, PlanDefinition.model_validate(stricter), staff_id=None
        )
        await session.commit()
    assert changed and version2.version == 2
    async with db.sessions() as session:
        assert definition_of(await get_version(session, plan.id, 1)) == first
        assert [v.version for v in await plan_versions(session, plan.id)] == [2, 1]
        current = {definition_of(v).code: v for v in await current_versions(session)}
        assert current[code].version == 2
        assert definition_of(current[code]).name == "疝修补术后随访（新版）"
    # The same definition again makes no version 3.
    async with db.sessions() as session:
        again, changed = await change_plan(
            session, plan.id, PlanDefinition.model_validate(stricter), staff_id=None
        )
        await session.commit()
    assert (again.version, changed) == (2, False)


async def test_a_plans_code_is_its_identity(db: Database) -> None:
    code = f"hernia_{next(_serial)}"
    async with db.sessions() as session:
        plan, _ = await create_plan(session, PlanDefinition.model_validate(small_plan(code)), staff_id=None)
        await session.commit()
    async with db.sessions() as session:
        with pytest.raises(PlanConflict, match="exists"):
            await create_plan(session, PlanDefinition.model_validate(small_plan(code)), staff_id=None)
        with pytest.raises(PlanConflict, match="cannot change"):
            await change_plan(
                session, plan.id, PlanDefinition.model_validate(small_plan(f"{code}_x")), staff_id=None
            )


async def test_an_inactive_plan_takes_no_new_enrolments(db: Database) -> None:
    code = f"hernia_{next(_serial)}"
    async with db.sessions() as session:
        plan, _ = await create_plan(session, PlanDefinition.model_validate(small_plan(code)), staff_id=None)
        await set_active(session, plan.id, False)
        await session.commit()
        assert code not in {definition_of(v).code for v in await current_versions(session)}
        await set_active(session, plan.id, True)
        await session.commit()
        assert code in {definition_of(v).code for v in await current_versions(session)}


async def test_two_clinicians_saving_at_once_get_distinct_versions(db: Database) -> None:
    """Two edits of one plan at the same moment: never two rows claiming one version number; on
    PostgreSQL (the plan row is locked) both are kept, as versions 2 and 3."""
    code = f"hernia_{next(_serial)}"
    async with db.sessions() as session:
        plan, _ = await create_plan(session, PlanDefinition.model_validate(small_plan(code)), staff_id=None)
        await session.commit()

    async def edit(hour: int) -> int | str:
        body = small_plan(code)
        body["time_points"][0]["hour"] = hour
        try:
            async with db.sessions() as session:
                version, _ = await change_plan(
                    session, plan.id, PlanDefinition.model_validate(body), staff_id=None
                )
                await session.commit()
                return version.version
        except PlanConflict as exc:
            return str(exc)

    results = await asyncio.gather(edit(8), edit(9))
    async with db.sessions() as session:
        stored = [v.version for v in await plan_versions(session, plan.id)]
    assert sorted(stored) == sorted({*stored}), "a version number was stored twice"
    saved = sorted(r for r in results if isinstance(r, int))
    assert stored == [*reversed(saved), 1]
    if not db.is_sqlite:
        assert saved == [2, 3]
    else:  # SQLite has no row locks: the later writer is told to reload, and nothing of it is stored
        assert saved in ([2], [2, 3])
        assert all("reload" in r for r in results if isinstance(r, str))
