"""Console session and administration endpoints (docs/CONSOLE_API.md, "Session" and "Administration")."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Request, Response, status
from pydantic import BaseModel, Field, StringConstraints

from crm_backend.audit import service as audit
from crm_backend.audit.service import client_ip
from crm_backend.database.core import RowId, utcnow
from crm_backend.staff import service
from crm_backend.staff.deps import AdminDep, DbSession, StaffDep, runtime_of, session_store
from crm_backend.staff.devices import DeviceCookies
from crm_backend.staff.models import Presence, Staff, StaffRole, Team
from crm_backend.staff.sessions import COOKIE_NAME
from crm_backend.staff.throttle import LoginAttempt, LoginThrottle

router = APIRouter(prefix="/api/console", tags=["console"])

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
Username = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64, pattern=r"^[\w.@-]+$")
]
#: Length limits only; 256 bounds the hashing work an anonymous caller can ask for.
NewPassword = Annotated[str, StringConstraints(min_length=8, max_length=256)]
Capacity = Annotated[int, Field(ge=0, le=50)]


class TeamRef(BaseModel):
    id: int
    name: str


class StaffOut(BaseModel):
    id: int
    username: str
    display_name: str
    role: StaffRole
    capacity: int
    active: bool
    presence: Presence
    teams: list[TeamRef]


class MeOut(BaseModel):
    id: int
    username: str
    display_name: str
    role: StaffRole
    teams: list[TeamRef]
    presence: Presence
    capacity: int
    csrf_token: str


class TeamOut(BaseModel):
    id: int
    name: str
    members: list[int]


class ColleagueOut(BaseModel):
    """A colleague as every role may see them: name, presence and team ids, no account details."""

    id: int
    display_name: str
    presence: Presence
    teams: list[int]


class DirectoryOut(BaseModel):
    teams: list[TeamRef]
    staff: list[ColleagueOut]


class LoginIn(BaseModel):
    username: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    password: Annotated[str, StringConstraints(min_length=1, max_length=256)]


class PresenceIn(BaseModel):
    presence: Presence


class StaffCreate(BaseModel):
    username: Username
    display_name: Name
    password: NewPassword
    role: StaffRole
    capacity: Capacity = 3
    team_ids: list[RowId] = Field(default_factory=list)


class StaffPatch(BaseModel):
    display_name: Name | None = None
    password: NewPassword | None = None
    role: StaffRole | None = None
    capacity: Capacity | None = None
    team_ids: list[RowId] | None = None
    active: bool | None = None


class TeamCreate(BaseModel):
    name: Name


def _teams(staff: Staff) -> list[TeamRef]:
    return [TeamRef(id=t.id, name=t.name) for t in staff.teams]


def _me(staff: Staff, csrf_token: str) -> MeOut:
    return MeOut(
        id=staff.id,
        username=staff.username,
        display_name=staff.display_name,
        role=staff.role,
        teams=_teams(staff),
        presence=staff.presence,
        capacity=staff.capacity,
        csrf_token=csrf_token,
    )


def _staff_out(staff: Staff) -> StaffOut:
    return StaffOut(
        id=staff.id,
        username=staff.username,
        display_name=staff.display_name,
        role=staff.role,
        capacity=staff.capacity,
        active=staff.active,
        presence=staff.presence,
        teams=_teams(staff),
    )


def _team_out(team: Team) -> TeamOut:
    return TeamOut(id=team.id, name=team.name, members=[m.id for m in team.members])


async def publish_event(request: Request, event: dict[str, Any]) -> None:
    """Hand a console event to the real-time publisher when the app has one (app.state.events)."""
    events = getattr(request.app.state, "events", None)
    if events is not None:
        await events.publish(event)


async def _publish_presence(request: Request, staff: Staff) -> None:
    await publish_event(
        request,
        {
            "type": "presence",
            "staff_id": staff.id,
            "display_name": staff.display_name,
            "presence": str(staff.presence),
            "team_ids": [t.id for t in staff.teams],
            "at": (staff.presence_at or utcnow()).isoformat(),
        },
    )


async def _load_staff(session: DbSession, staff_id: int) -> Staff:
    staff = await service.get_staff(session, staff_id)
    if staff is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such staff member")
    return staff


def _as_http(exc: service.StaffError) -> HTTPException:
    code = status.HTTP_409_CONFLICT if isinstance(exc, service.StaffConflict) else status.HTTP_400_BAD_REQUEST
    return HTTPException(code, str(exc))


# -- session -----------------------------------------------------------------------------------


@router.post("/login", response_model=MeOut)
async def login(body: LoginIn, request: Request, response: Response, session: DbSession) -> MeOut:
    runtime = runtime_of(request)
    throttle = LoginThrottle(runtime.redis, runtime.settings)
    devices = DeviceCookies(runtime.settings)
    device = devices.known_device(request, body.username)
    attempt = LoginAttempt(
        body.username, client_ip(request) or "unknown", device.device_id if device is not None else None
    )
    wait = await throttle.retry_after(attempt)
    if wait is not None:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            "too many failed logins, try again later",
            headers={"Retry-After": str(wait)},
        )
    staff = await service.authenticate(session, body.username, body.password)
    if staff is None:
        await throttle.failed(attempt)
        known = await service.get_staff_by_username(session, body.username)
        await audit.record(
            session,
            staff_id=known.id if known else None,
            action="login.failed",
            object_type="staff",
            object_id=known.id if known else "",
            request=request,
            detail={"username": body.username, "known_device": device is not None},
        )
        await session.commit()
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "wrong username or password")
    await throttle.succeeded(attempt)
    store = session_store(request)
    await store.delete(request.cookies.get(COOKIE_NAME))  # never keep a pre-login session (fixation)
    token, data = await store.create(staff.id)
    await audit.record(
        session, staff_id=staff.id, action="login", object_type="staff", object_id=staff.id, request=request
    )
    await session.commit()
    store.set_cookie(response, token)
    devices.remember(response, body.username, device)
    return _me(staff, data.csrf_token)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
async def logout(request: Request, me: StaffDep, session: DbSession) -> Response:
    store = session_store(request)
    await store.delete(request.cookies.get(COOKIE_NAME))
    staff = await _load_staff(session, me.id)
    await service.set_presence(session, staff, Presence.offline)
    await audit.record(
        session, staff_id=me.id, action="logout", object_type="staff", object_id=me.id, request=request
    )
    await session.commit()
    await _publish_presence(request, staff)
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    store.clear_cookie(response)
    return response


@router.get("/me", response_model=MeOut)
async def me(me: StaffDep, session: DbSession) -> MeOut:
    return _me(await _load_staff(session, me.id), me.csrf_token)


@router.put("/me/presence", response_model=MeOut)
async def set_presence(body: PresenceIn, request: Request, me: StaffDep, session: DbSession) -> MeOut:
    staff = await _load_staff(session, me.id)
    await service.set_presence(session, staff, body.presence)
    await session.commit()
    await _publish_presence(request, staff)
    return _me(staff, me.csrf_token)


# -- administration ----------------------------------------------------------------------------


@router.get("/admin/staff", response_model=list[StaffOut])
async def list_staff(admin: AdminDep, session: DbSession) -> list[StaffOut]:
    return [_staff_out(s) for s in await service.list_staff(session)]


@router.post("/admin/staff", response_model=StaffOut)
async def create_staff(body: StaffCreate, request: Request, admin: AdminDep, session: DbSession) -> StaffOut:
    try:
        staff = await service.create_staff(
            session,
            username=body.username,
            display_name=body.display_name,
            password=body.password,
            role=body.role,
            capacity=body.capacity,
            team_ids=body.team_ids,
        )
    except service.StaffError as exc:
        raise _as_http(exc) from exc
    detail = {"username": staff.username, "role": str(staff.role), "team_ids": sorted(body.team_ids)}
    await audit.record(
        session,
        staff_id=admin.id,
        action="staff.create",
        object_type="staff",
        object_id=staff.id,
        request=request,
        detail=detail,
    )
    await session.commit()
    return _staff_out(staff)


@router.patch("/admin/staff/{staff_id}", response_model=StaffOut)
async def update_staff(
    staff_id: RowId, body: StaffPatch, request: Request, admin: AdminDep, session: DbSession
) -> StaffOut:
    staff = await _load_staff(session, staff_id)
    try:
        changed = await service.update_staff(session, staff, **body.model_dump(exclude_none=True))
    except service.StaffError as exc:
        raise _as_http(exc) from exc
    if changed:
        # Record what changed, never the password itself.
        detail = {f: ("changed" if f == "password" else _audit_value(staff, f)) for f in changed}
        await audit.record(
            session,
            staff_id=admin.id,
            action="staff.update",
            object_type="staff",
            object_id=staff.id,
            request=request,
            detail=detail,
        )
    await session.commit()
    if "active" in changed or "password" in changed:
        await session_store(request).revoke_all(staff.id)
    if "active" in changed and not staff.active:
        await _publish_presence(request, staff)
    return _staff_out(staff)


def _audit_value(staff: Staff, field: str) -> Any:
    if field == "team_ids":
        return sorted(t.id for t in staff.teams)
    value = getattr(staff, field)
    return str(value) if isinstance(value, StaffRole) else value


@router.get("/admin/teams", response_model=list[TeamOut])
async def list_teams(admin: AdminDep, session: DbSession) -> list[TeamOut]:
    return [_team_out(t) for t in await service.list_teams(session)]


@router.post("/admin/teams", response_model=TeamOut)
async def create_team(body: TeamCreate, request: Request, admin: AdminDep, session: DbSession) -> TeamOut:
    try:
        team = await service.create_team(session, body.name)
    except service.StaffError as exc:
        raise _as_http(exc) from exc
    await audit.record(
        session,
        staff_id=admin.id,
        action="team.create",
        object_type="team",
        object_id=team.id,
        request=request,
        detail={"name": team.name},
    )
    await session.commit()
    return _team_out(team)


@router.get("/directory", response_model=DirectoryOut)
async def directory(me: StaffDep, session: DbSession) -> DirectoryOut:
    """Who and where a chat can be transferred to: every team and active colleague (names and presence
    only, no account details), for every role."""
    teams = await service.list_teams(session)
    members: dict[int, list[int]] = {}
    for team in teams:
        for member in team.members:
            members.setdefault(member.id, []).append(team.id)
    staff = [s for s in await service.list_staff(session) if s.active]
    return DirectoryOut(
        teams=[TeamRef(id=t.id, name=t.name) for t in teams],
        staff=[
            ColleagueOut(
                id=s.id,
                display_name=s.display_name,
                presence=s.presence,
                teams=sorted(members.get(s.id, [])),
            )
            for s in staff
        ],
    )
