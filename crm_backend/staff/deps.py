"""FastAPI dependencies every console endpoint uses: who is calling, may they, and is it really them.

`current_staff` answers 401 without a live session, and for unsafe methods (POST/PUT/PATCH/DELETE)
403 unless the `X-CSRF-Token` header equals the session's token; it also audits every refused access
to patient data (`AccessRefused`) the endpoint raises. CSRF is checked here rather than in
a separate dependency so that no console endpoint can forget it. It returns a `CurrentStaff`
snapshot (not an ORM object) so it can be used without holding a database session open, including
in WebSocket endpoints, where it checks the Origin header instead of a CSRF header.
"""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, HTTPException, Request, WebSocketException, status
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import HTTPConnection

from crm_backend.audit.refusals import AccessRefused, record_refusal
from crm_backend.runtime import Runtime
from crm_backend.staff.models import SUPERVISING_ROLES, Staff, StaffRole
from crm_backend.staff.sessions import COOKIE_NAME, SessionStore

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_HEADER = "x-csrf-token"


@dataclass(frozen=True, slots=True)
class CurrentStaff:
    """The logged-in staff member as of this request."""

    id: int
    username: str
    display_name: str
    role: StaffRole
    team_ids: frozenset[int]
    csrf_token: str

    @property
    def sees_all_teams(self) -> bool:
        """Supervisors and admins work across every team."""
        return self.role in SUPERVISING_ROLES

    def may_access_team(self, team_id: int | None) -> bool:
        return self.sees_all_teams or (team_id is not None and team_id in self.team_ids)


def runtime_of(conn: HTTPConnection) -> Runtime:
    return conn.app.state.runtime


def session_store(conn: HTTPConnection) -> SessionStore:
    runtime = runtime_of(conn)
    return SessionStore(runtime.redis, runtime.settings)


async def db_session(request: Request) -> AsyncIterator[AsyncSession]:
    """A database session for one request; the endpoint commits what it wants kept."""
    async with runtime_of(request).db.sessions() as session:
        yield session


def _deny(conn: HTTPConnection, code: int, detail: str) -> Exception:
    if conn.scope["type"] == "websocket":
        return WebSocketException(code=status.WS_1008_POLICY_VIOLATION, reason=detail)
    return HTTPException(code, detail)


def _same_origin(conn: HTTPConnection) -> bool:
    origin = conn.headers.get("origin")
    return origin is None or urlsplit(origin).netloc == conn.headers.get("host")


async def current_staff(conn: HTTPConnection) -> AsyncIterator[CurrentStaff]:
    """The caller's staff snapshot; 401 without a live session of an active account, 403 on bad CSRF.

    An `AccessRefused` the endpoint raises passes back through here, where the caller is known: it
    is written to the audit log in its own transaction before the 403 goes out.
    """
    store = session_store(conn)
    token = conn.cookies.get(COOKIE_NAME)
    data = await store.load(token)
    if data is None:
        raise _deny(conn, status.HTTP_401_UNAUTHORIZED, "not logged in")
    if conn.scope["type"] == "http":
        if conn.scope["method"] not in SAFE_METHODS:
            sent = conn.headers.get(CSRF_HEADER, "")
            if not hmac.compare_digest(sent.encode(), data.csrf_token.encode()):
                raise HTTPException(status.HTTP_403_FORBIDDEN, "missing or wrong CSRF token")
    elif not _same_origin(conn):  # WebSocket handshakes carry no custom header; check Origin instead
        raise _deny(conn, status.HTTP_403_FORBIDDEN, "cross-origin WebSocket refused")
    async with runtime_of(conn).db.sessions() as session:
        staff = await session.get(Staff, data.staff_id)
        if staff is None or not staff.active:
            await store.delete(token)
            raise _deny(conn, status.HTTP_401_UNAUTHORIZED, "not logged in")
        snapshot = CurrentStaff(
            id=staff.id,
            username=staff.username,
            display_name=staff.display_name,
            role=staff.role,
            team_ids=frozenset(t.id for t in staff.teams),
            csrf_token=data.csrf_token,
        )
    try:
        yield snapshot
    except AccessRefused as refusal:
        await record_refusal(runtime_of(conn).db, refusal, staff_id=snapshot.id, conn=conn)
        raise


def require_roles(*roles: StaffRole) -> Callable[..., Awaitable[CurrentStaff]]:
    """A dependency like `current_staff` that also answers 403 unless the caller has one of `roles`."""
    allowed = frozenset(roles)

    async def dependency(
        conn: HTTPConnection, staff: Annotated[CurrentStaff, Depends(current_staff)]
    ) -> CurrentStaff:
        if staff.role not in allowed:
            if conn.scope["type"] == "websocket":
                raise _deny(conn, status.HTTP_403_FORBIDDEN, "your role does not allow this")
            # Audited like a refused patient: these endpoints show the log, reports and accounts.
            raise AccessRefused(
                "your role does not allow this",
                action="role.check",
                object_type="endpoint",
                object_id=conn.url.path[:64],
                audit_detail={"method": conn.scope.get("method"), "role": staff.role},
            )
        return staff

    return dependency


StaffDep = Annotated[CurrentStaff, Depends(current_staff)]
SupervisorDep = Annotated[CurrentStaff, Depends(require_roles(StaffRole.supervisor, StaffRole.admin))]
AdminDep = Annotated[CurrentStaff, Depends(require_roles(StaffRole.admin))]
DbSession = Annotated[AsyncSession, Depends(db_session)]
