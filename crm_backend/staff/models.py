"""Hospital staff who answer escalated chats, and the teams that route work to them."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Enum, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm_backend.database.core import Base, UTCDateTime, utcnow


class StaffRole(StrEnum):
    agent = "agent"
    nurse = "nurse"
    #: Defines follow-up plans and reads their results.
    clinician = "clinician"
    #: The complaints office (投诉管理部门): sees and assigns every complaint and praise case.
    complaints_office = "complaints_office"
    supervisor = "supervisor"
    admin = "admin"


class Presence(StrEnum):
    online = "online"
    away = "away"
    offline = "offline"


#: Roles that see every team's work (queues, SLA breaches, audit log).
SUPERVISING_ROLES = frozenset({StaffRole.supervisor, StaffRole.admin})


def _enum_column(enum: type[StrEnum], length: int = 16) -> Enum:
    # VARCHAR rather than a native PostgreSQL enum, so adding a role later needs no type migration
    # (only a longer name needs the column widened: 0015 for complaints_office).
    return Enum(enum, native_enum=False, length=length, values_callable=lambda e: [m.value for m in e])


class TeamMembership(Base):
    __tablename__ = "team_members"

    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id", ondelete="CASCADE"), primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True)


class Staff(Base):
    """A console user. Never deleted (audit rows point at it); `active=False` disables the account."""

    __tablename__ = "staff"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(64))
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[StaffRole] = mapped_column(_enum_column(StaffRole, 32))
    active: Mapped[bool] = mapped_column(default=True)
    #: Most escalated chats this person handles at once; round-robin skips them when full.
    capacity: Mapped[int] = mapped_column(default=3)
    presence: Mapped[Presence] = mapped_column(_enum_column(Presence), default=Presence.offline)
    presence_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: Round-robin picks the online member assigned longest ago (never assigned first).
    last_assigned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    # selectin: async sessions cannot lazy-load, and every console answer shows the teams.
    teams: Mapped[list[Team]] = relationship(
        secondary="team_members", back_populates="members", lazy="selectin", order_by="Team.name"
    )


class Team(Base):
    __tablename__ = "teams"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    # Not eager: loading a staff member's teams must not pull in every colleague. Load it explicitly
    # (selectinload) where members are shown.
    members: Mapped[list[Staff]] = relationship(
        secondary="team_members", back_populates="teams", order_by="Staff.id"
    )
