"""Follow-up plans and their versions: the shipped plans, listing, creating and changing plans.

A plan's definition never changes in place: a change is a new version row, and enrolments point at
the version they started with, so what an enrolled patient is asked stays as it was. The shipped
plans (shipped_plans.yml) are created as version 1 where absent and never overwrite a plan staff
changed. Callers commit.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Subquery

# The tables follow-up rows refer to (staff, teams, patients, messages): their models must be loaded
# for the ORM to order inserts, also where this runs without the app that loads every domain (the
# seed command, scripts).
import crm_backend.conversations.models
import crm_backend.patients.models
import crm_backend.staff.models  # noqa: F401
from crm_backend.followups.models import FollowupPlan, FollowupPlanVersion
from crm_backend.followups.plans import PlanDefinition

SHIPPED_PLANS_FILE = Path(__file__).with_name("shipped_plans.yml")


class PlanNotFound(LookupError):
    """No plan (or no such version of it) with that id."""


class PlanConflict(ValueError):
    """The change clashes with what is stored (a plan code taken, a plan's code changed)."""


@functools.cache
def shipped_plans() -> tuple[PlanDefinition, ...]:
    """The plans CareBridge ships, checked once: a broken file fails at start-up, not at a patient."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    data: dict[str, Any] = yaml.load(SHIPPED_PLANS_FILE.read_text(encoding="utf-8"), Loader=loader)
    return tuple(PlanDefinition.model_validate(plan) for plan in data["plans"])


def definition_of(version: FollowupPlanVersion) -> PlanDefinition:
    """A stored version's definition, read back through the one shape all parts share."""
    return PlanDefinition.model_validate(version.definition)


def _stored(definition: PlanDefinition) -> dict[str, Any]:
    return definition.model_dump(mode="json")


async def plan_by_code(session: AsyncSession, code: str) -> FollowupPlan | None:
    return await session.scalar(select(FollowupPlan).where(FollowupPlan.code == code))


async def ensure_shipped_plans(session: AsyncSession) -> None:
    """Create each shipped plan as version 1 where no plan has its code; leave existing plans alone.

    Idempotent and safe when two processes seed at once (the loser of the unique race skips)."""
    for definition in shipped_plans():
        if await plan_by_code(session, definition.code) is not None:
            continue
        try:
            async with session.begin_nested():
                await _insert_plan(session, definition, staff_id=None)
        except IntegrityError:
            if await plan_by_code(session, definition.code) is None:
                raise


async def _insert_plan(
    session: AsyncSession, definition: PlanDefinition, *, staff_id: int | None
) -> tuple[FollowupPlan, FollowupPlanVersion]:
    plan = FollowupPlan(code=definition.code, name=definition.name, active=True)
    session.add(plan)
    await session.flush()
    version = FollowupPlanVersion(
        plan_id=plan.id, version=1, definition=_stored(definition), created_by_staff_id=staff_id
    )
    session.add(version)
    await session.flush()
    return plan, version


def _latest_versions() -> Subquery:
    """(plan_id, highest version number) of every plan, as a subquery."""
    return (
        select(FollowupPlanVersion.plan_id, func.max(FollowupPlanVersion.version).label("latest"))
        .group_by(FollowupPlanVersion.plan_id)
        .subquery()
    )


async def current_versions(session: AsyncSession) -> list[FollowupPlanVersion]:
    """The newest version of every active plan (what new enrolments start with), by plan code."""
    latest = _latest_versions()
    rows = await session.scalars(
        select(FollowupPlanVersion)
        .join(
            latest,
            (latest.c.plan_id == FollowupPlanVersion.plan_id)
            & (latest.c.latest == FollowupPlanVersion.version),
        )
        .join(FollowupPlan, FollowupPlan.id == FollowupPlanVersion.plan_id)
        .where(FollowupPlan.active.is_(True))
        .order_by(FollowupPlan.code)
    )
    return list(rows)


async def list_plans(session: AsyncSession) -> list[tuple[FollowupPlan, FollowupPlanVersion]]:
    """Every plan, active or not, with its newest version, by plan code."""
    latest = _latest_versions()
    rows = await session.execute(
        select(FollowupPlan, FollowupPlanVersion)
        .join(FollowupPlanVersion, FollowupPlanVersion.plan_id == FollowupPlan.id)
        .join(
            latest,
            (latest.c.plan_id == FollowupPlanVersion.plan_id)
            & (latest.c.latest == FollowupPlanVersion.version),
        )
        .order_by(FollowupPlan.code)
    )
    return [(plan, version) for plan, version in rows]


async def get_plan(session: AsyncSession, plan_id: int) -> FollowupPlan:
    plan = await session.get(FollowupPlan, plan_id)
    if plan is None:
        raise PlanNotFound(f"no follow-up plan {plan_id}")
    return plan


async def plan_versions(session: AsyncSession, plan_id: int) -> list[FollowupPlanVersion]:
    """A plan's versions, newest first."""
    rows = await session.scalars(
        select(FollowupPlanVersion)
        .where(FollowupPlanVersion.plan_id == plan_id)
        .order_by(FollowupPlanVersion.version.desc())
    )
    return list(rows)


async def get_version(session: AsyncSession, plan_id: int, number: int) -> FollowupPlanVersion:
    version = await session.scalar(
        select(FollowupPlanVersion).where(
            FollowupPlanVersion.plan_id == plan_id, FollowupPlanVersion.version == number
        )
    )
    if version is None:
        raise PlanNotFound(f"follow-up plan {plan_id} has no version {number}")
    return version


async def create_plan(
    session: AsyncSession, definition: PlanDefinition, *, staff_id: int | None
) -> tuple[FollowupPlan, FollowupPlanVersion]:
    """A new plan at version 1; a plan code already in use is a conflict, not a second plan."""
    if await plan_by_code(session, definition.code) is not None:
        raise PlanConflict(f"a follow-up plan with code {definition.code} exists; change that plan instead")
    try:
        async with session.begin_nested():
            return await _insert_plan(session, definition, staff_id=staff_id)
    except IntegrityError as exc:
        raise PlanConflict(f"a follow-up plan with code {definition.code} exists") from exc


async def change_plan(
    session: AsyncSession, plan_id: int, definition: PlanDefinition, *, staff_id: int | None
) -> tuple[FollowupPlanVersion, bool]:
    """Store a changed definition as the next version; (version, whether a new one was made).

    Enrolled patients keep the version they started with: nothing but the new row (and the plan's
    display name) changes. A definition equal to the newest version makes no new version."""
    # Lock the plan row (PostgreSQL) so two simultaneous edits get versions n+1 and n+2, not a clash.
    plan = await session.scalar(select(FollowupPlan).where(FollowupPlan.id == plan_id).with_for_update())
    if plan is None:
        raise PlanNotFound(f"no follow-up plan {plan_id}")
    if definition.code != plan.code:
        raise PlanConflict(f"a plan's code cannot change (this plan is {plan.code}, not {definition.code})")
    newest = (await plan_versions(session, plan_id))[0]
    if definition_of(newest) == definition:
        return newest, False
    try:
        async with session.begin_nested():
            version = FollowupPlanVersion(
                plan_id=plan.id,
                version=newest.version + 1,
                definition=_stored(definition),
                created_by_staff_id=staff_id,
            )
            session.add(version)
            plan.name = definition.name
            await session.flush()
    except IntegrityError as exc:
        raise PlanConflict("the plan was changed at the same time; reload it and try again") from exc
    return version, True


async def set_active(session: AsyncSession, plan_id: int, active: bool) -> FollowupPlan:
    """An inactive plan takes no new enrolments; patients already enrolled carry on with it."""
    plan = await get_plan(session, plan_id)
    plan.active = active
    await session.flush()
    return plan
