"""The shipped plans: valid, seeded once, and matching what hospitals write."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import func, select

from crm_backend.database.core import Database
from crm_backend.followups.models import FollowupPlan, FollowupPlanVersion
from crm_backend.followups.plan_service import (
    change_plan,
    create_plan,
    current_versions,
    definition_of,
    ensure_shipped_plans,
    get_version,
    plan_by_code,
    shipped_plans,
)
from crm_backend.followups.plans import Flag, PlanDefinition, QuestionType
from tests.followups.test_plans import small_plan
from tests.support.postgres import ROOT, alembic


async def _counts(db: Database) -> tuple[int, int]:
    async with db.sessions() as session:
        plans = await session.scalar(select(func.count()).select_from(FollowupPlan))
        versions = await session.scalar(select(func.count()).select_from(FollowupPlanVersion))
        return int(plans or 0), int(versions or 0)


async def test_shipped_plans_are_seeded_once_as_version_1(db: Database) -> None:
    async with db.sessions() as session:
        await ensure_shipped_plans(session)
        await session.commit()
    first = await _counts(db)
    async with db.sessions() as session:
        await ensure_shipped_plans(session)
        await session.commit()
    assert await _counts(db) == first
    shipped = {plan.code: plan for plan in shipped_plans()}
    async with db.sessions() as session:
        current = {definition_of(v).code for v in await current_versions(session)}
        for code in ("lap_cholecystectomy", "joint_arthroplasty", "appendectomy"):
            assert code in current
            plan = await plan_by_code(session, code)
            assert plan is not None
            first = await get_version(session, plan.id, 1)
            assert first.created_by_staff_id is None
            assert definition_of(first) == shipped[code]


async def test_seeding_leaves_plans_staff_wrote_or_changed_alone(tmp_path: Path) -> None:
    """On a fresh database: staff wrote their own appendectomy plan before the seed ran, and later
    changed the shipped joint plan; seeding again keeps both as staff left them."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'carebridge.db'}"
    alembic(url, "upgrade", "head")
    db = Database(url)
    try:
        own = PlanDefinition.model_validate(small_plan("appendectomy", name="本院阑尾切除术后随访"))
        async with db.sessions() as session:
            await create_plan(session, own, staff_id=None)
            await ensure_shipped_plans(session)
            await session.commit()
        shipped = {plan.code: plan for plan in shipped_plans()}
        joint = shipped["joint_arthroplasty"].model_copy(update={"name": "关节置换术后随访（本院）"})
        async with db.sessions() as session:
            plan = await plan_by_code(session, "joint_arthroplasty")
            assert plan is not None
            await change_plan(session, plan.id, joint, staff_id=None)
            await session.commit()
        async with db.sessions() as session:
            await ensure_shipped_plans(session)
            await session.commit()
            current = {definition_of(v).code: v for v in await current_versions(session)}
        assert (current["appendectomy"].version, definition_of(current["appendectomy"])) == (1, own)
        assert (current["joint_arthroplasty"].version, definition_of(current["joint_arthroplasty"])) == (
            2,
            joint,
        )
        assert definition_of(current["lap_cholecystectomy"]) == shipped["lap_cholecystectomy"]
    finally:
        await db.dispose()


def test_lap_chole_plan_lists_its_procedure_and_code() -> None:
    plans = {plan.code: plan for plan in shipped_plans()}
    lc = plans["lap_cholecystectomy"]
    assert any(p.text == "腹腔镜胆囊切除术" and "51.23" in p.codes for p in lc.procedures)
    assert [point.day for point in lc.time_points] == [1, 3, 7, 30]
    assert [point.day for point in plans["joint_arthroplasty"].time_points] == [1, 3, 7, 30, 90]
    joint_codes = {code for p in plans["joint_arthroplasty"].procedures for code in p.codes}
    assert {"81.54", "81.51"} <= joint_codes
    assert "47.01" in {code for p in plans["appendectomy"].procedures for code in p.codes}


def test_shipped_plans_are_short_and_every_urgent_rule_says_what_to_do() -> None:
    for plan in shipped_plans():
        assert "确认" in plan.review_note  # clinicians must confirm the thresholds
        for point in plan.time_points:
            questions = point.questionnaire.questions
            assert 5 <= len(questions) <= 8, (plan.code, point.day)
            assert questions[-1].type == QuestionType.free_text
            for question in questions:
                for rule in question.flags:
                    if rule.flag in (Flag.red, Flag.emergency):
                        assert len(rule.advice) >= 10, (plan.code, question.code)
                    if rule.flag == Flag.emergency:
                        assert "120" in rule.advice or "急诊" in rule.advice


def test_shipped_thresholds_are_the_ones_nurses_use() -> None:
    """NRS ≥ 4 amber, ≥ 7 red; temperature 35–42 °C, ≥ 38.5 red; discharge asked only for a red or
    swollen wound; chest pain / breathlessness / a swollen calf / heavy bleeding are emergencies."""
    for plan in shipped_plans():
        day1 = plan.time_points[0].questionnaire
        pain = {rule.flag: rule.at_least for rule in day1.question("pain").flags}
        assert pain == {Flag.amber: 4, Flag.red: 7}
        temperature = day1.question("temperature")
        assert (temperature.minimum, temperature.maximum, temperature.unit) == (35, 42, "°C")
        assert {rule.flag: rule.at_least for rule in temperature.flags}[Flag.red] == 38.5
        discharge = day1.question("wound_discharge")
        assert discharge.enable_when is not None and discharge.enable_when.question == "wound"
        assert set(discharge.enable_when.any_of) == {"red", "swollen"}
        emergencies = {
            code
            for rule in day1.question("danger_signs").flags
            if rule.flag == Flag.emergency
            for code in rule.any_of
        }
        assert {"breathless", "chest_pain", "calf", "bleeding"} <= emergencies


def test_the_seed_command_creates_the_shipped_plans_once(tmp_path: Path) -> None:
    """`python -m crm_backend.followups.seed`, as `make run` calls it, on a freshly migrated database."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'carebridge.db'}"
    alembic(url, "upgrade", "head")
    env = {**os.environ, "DATABASE_URL": url}
    for _ in range(2):
        done = subprocess.run(
            [sys.executable, "-m", "crm_backend.followups.seed"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert "appendectomy v1, joint_arthroplasty v1, lap_cholecystectomy v1" in done.stdout
