"""Staff and team operations shared by the console views, start-up and (later) routing."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from crm_backend.config import Settings
from crm_backend.database.core import Database, utcnow
from crm_backend.staff import passwords
from crm_backend.staff.models import Presence, Staff, StaffRole, Team, TeamMembership

log = logging.getLogger(__name__)


class StaffError(ValueError):
    """A request the data does not allow (unknown team, last admin removed); views answer 400."""


class StaffConflict(StaffError):
    """A unique name already taken; views answer 409."""


# Argon2 takes tens of milliseconds of CPU on purpose: run it in a thread so the event loop keeps going.
async def _hash(password: str) -> str:
    return await asyncio.to_thread(passwords.hash_password, password)


async def _verify(password_hash: str | None, password: str) -> bool:
    return await asyncio.to_thread(passwords.verify_password, password_hash, password)


async def _teams_by_ids(session: AsyncSession, team_ids: Iterable[int]) -> list[Team]:
    wanted = set(team_ids)
    if not wanted:
        return []
    teams = list((await session.scalars(select(Team).where(Team.id.in_(wanted)))).all())
    missing = wanted - {t.id for t in teams}
    if missing:
        raise StaffError(f"unknown team ids: {sorted(missing)}")
    return teams


async def get_staff(session: AsyncSession, staff_id: int) -> Staff | None:
    return await session.get(Staff, staff_id)


async def get_staff_by_username(session: AsyncSession, username: str) -> Staff | None:
    return await session.scalar(select(Staff).where(Staff.username == username))


async def list_staff(session: AsyncSession) -> list[Staff]:
    return list((await session.scalars(select(Staff).order_by(Staff.id))).all())


async def create_staff(
    session: AsyncSession,
    *,
    username: str,
    display_name: str,
    password: str,
    role: StaffRole,
    capacity: int = 3,
    team_ids: Iterable[int] = (),
) -> Staff:
    """Add a staff member and flush; raises StaffConflict if the username is taken. Caller commits."""
    if await session.scalar(select(Staff.id).where(Staff.username == username)) is not None:
        raise StaffConflict("username already taken")
    staff = Staff(
        username=username,
        display_name=display_name,
        password_hash=await _hash(password),
        role=role,
        capacity=capacity,
        teams=await _teams_by_ids(session, team_ids),
    )
    session.add(staff)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as exc:  # lost a race with another insert of the same username
        raise StaffConflict("username already taken") from exc
    return staff


async def _active_admins(session: AsyncSession) -> int:
    query = select(func.count()).select_from(Staff).where(Staff.role == StaffRole.admin, Staff.active)
    return int(await session.scalar(query) or 0)


async def update_staff(
    session: AsyncSession,
    staff: Staff,
    *,
    display_name: str | None = None,
    password: str | None = None,
    role: StaffRole | None = None,
    capacity: int | None = None,
    team_ids: Iterable[int] | None = None,
    active: bool | None = None,
) -> list[str]:
    """Apply the given changes; return the names of the fields changed. Refuses to remove the last admin.

    The caller revokes sessions when `password` or `active` changed (see sessions.revoke_all) and commits.
    """
    changed: list[str] = []
    was_admin = staff.role == StaffRole.admin and staff.active
    if display_name is not None and display_name != staff.display_name:
        staff.display_name = display_name
        changed.append("display_name")
    if password is not None:
        staff.password_hash = await _hash(password)
        changed.append("password")
    if role is not None and role != staff.role:
        staff.role = role
        changed.append("role")
    if capacity is not None and capacity != staff.capacity:
        staff.capacity = capacity
        changed.append("capacity")
    if team_ids is not None:
        teams = await _teams_by_ids(session, team_ids)
        if {t.id for t in teams} != {t.id for t in staff.teams}:
            staff.teams = teams
            changed.append("team_ids")
    if active is not None and active != staff.active:
        staff.active = active
        if not active:
            staff.presence = Presence.offline
            staff.presence_at = utcnow()
        changed.append("active")
    if was_admin and not (staff.role == StaffRole.admin and staff.active):
        await session.flush()
        if await _active_admins(session) == 0:
            raise StaffError("cannot remove the last active admin")
    return changed


async def authenticate(session: AsyncSession, username: str, password: str) -> Staff | None:
    """The active staff member with these credentials, or None; upgrades an outdated hash (caller commits).

    Unknown and disabled accounts cost the same hashing time as a wrong password.
    """
    staff = await session.scalar(select(Staff).where(Staff.username == username))
    ok = await _verify(staff.password_hash if staff else None, password)
    if staff is None or not ok or not staff.active:
        return None
    if passwords.needs_rehash(staff.password_hash):
        staff.password_hash = await _hash(password)
    return staff


async def set_presence(session: AsyncSession, staff: Staff, presence: Presence) -> None:
    staff.presence = presence
    staff.presence_at = utcnow()


async def ensure_first_admin(settings: Settings, db: Database) -> Staff | None:
    """Create the admin from ADMIN_USERNAME/ADMIN_PASSWORD when no active admin exists; None otherwise.

    Safe when several processes start at once: the unique username lets exactly one insert win.
    """
    if not settings.admin_username or not settings.admin_password:
        return None
    async with db.sessions() as session:
        if await _active_admins(session) > 0:
            return None
        if await session.scalar(select(Staff.id).where(Staff.username == settings.admin_username)):
            # Never promote an existing account from the environment: that would be a silent escalation.
            log.warning("ADMIN_USERNAME %r exists but is not an active admin", settings.admin_username)
            return None
        admin = Staff(
            username=settings.admin_username,
            display_name=settings.admin_username,
            password_hash=await _hash(settings.admin_password),
            role=StaffRole.admin,
        )
        session.add(admin)
        try:
            await session.commit()
        except IntegrityError:
            await session.rollback()
            return None
        log.info("created the first admin %r", settings.admin_username)
        return admin


# -- teams -------------------------------------------------------------------------------------


async def list_teams(session: AsyncSession) -> list[Team]:
    query = select(Team).options(selectinload(Team.members)).order_by(Team.name)
    return list((await session.scalars(query)).all())


async def get_team(session: AsyncSession, team_id: int) -> Team | None:
    return await session.get(Team, team_id, options=[selectinload(Team.members)])


async def create_team(session: AsyncSession, name: str) -> Team:
    """Add a team and flush; raises StaffConflict if the name is taken. Caller commits."""
    if await session.scalar(select(Team.id).where(Team.name == name)) is not None:
        raise StaffConflict("team name already taken")
    team = Team(name=name, members=[])
    session.add(team)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as exc:
        raise StaffConflict("team name already taken") from exc
    return team


async def rename_team(session: AsyncSession, team: Team, name: str) -> None:
    if name != team.name and await session.scalar(select(Team.id).where(Team.name == name)) is not None:
        raise StaffConflict("team name already taken")
    team.name = name


async def delete_team(session: AsyncSession, team: Team) -> None:
    """Remove a team and its memberships (fails at commit if escalations still point at it)."""
    await session.delete(team)


async def online_members(session: AsyncSession, team_id: int) -> list[Staff]:
    """Active members of the team who are online, longest since last assignment first (never first).

    Capacity is not checked here: the router counts open escalations per member and skips full ones.
    """
    query = (
        select(Staff)
        .join(TeamMembership, TeamMembership.staff_id == Staff.id)
        .where(TeamMembership.team_id == team_id, Staff.active, Staff.presence == Presence.online)
        .order_by(Staff.last_assigned_at.asc().nulls_first(), Staff.id)
    )
    return list((await session.scalars(query)).all())
