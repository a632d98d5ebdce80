"""Escalation: the single way a conversation passes from the bot to people, and back.

Any dialogue or job calls `escalate()`; the console calls claim, reply, transfer and resolve.
Writes commit first; side effects that live elsewhere (Rasa's tracker, the outbox, console events)
follow the commit, so a failure there never loses the escalation itself.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Protocol
from urllib.parse import quote

from redis.exceptions import LockNotOwnedError
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import HTTPConnection

from crm_backend.audit.refusals import AccessRefused
from crm_backend.audit.service import record as audit
from crm_backend.conversations.bot_gateway import BotGateway, BotUnavailable
from crm_backend.conversations.events import StaffWrote
from crm_backend.conversations.models import (
    Conversation,
    ConversationStatus,
    Direction,
    Message,
    SenderType,
)
from crm_backend.conversations.outgoing import add_outbound as add_outbound
from crm_backend.conversations.rating_dialogue import RATING_QUESTION
from crm_backend.conversations.red_flag_screen import MARK_KEY as RED_FLAG_MARK
from crm_backend.conversations.reply_window import ReplyWindow, WindowState, reply_window
from crm_backend.conversations.route import Route
from crm_backend.conversations.service import current_conversation
from crm_backend.escalations import waiting
from crm_backend.escalations.access import may_view
from crm_backend.escalations.hours import describe_opening, is_staffed, next_opening
from crm_backend.escalations.models import ConversationNote, Escalation, EscalationStatus, Priority
from crm_backend.escalations.sla import sla_due_at
from crm_backend.patients.models import WeChatIdentity
from crm_backend.patients.service import rasa_sender
from crm_backend.realtime.events import ConsoleEvents
from crm_backend.runtime import Runtime
from crm_backend.staff.models import SUPERVISING_ROLES, Presence, Staff, StaffRole, Team, TeamMembership

log = logging.getLogger(__name__)

#: Teams an escalation can be sent to by key; created on first use, renamed freely by admins later.
TEAM_NAMES = {"service": "客服中心", "nursing": "护理团队", "complaints": "投诉办公室"}
#: The reason of an escalation staff opened by starting a message to the patient.
STAFF_MESSAGE = "staff_message"
#: Why a message to the patient is refused now (409); the console words it in Chinese for staff.
WINDOW_REFUSALS = {
    WindowState.NEVER_OPENED: "the patient has never written: WeChat accepts no message before they do",
    WindowState.EXPIRED: "WeChat's 48-hour window since the patient's last message has closed",
    WindowState.USED_UP: "the 5 messages WeChat allows since the patient's last message are used",
    WindowState.UNSUBSCRIBED: "the patient no longer follows the account",
}
#: Rough handling time per chat, for the wait estimate the patient sees.
MINUTES_PER_CHAT = 4
#: The longest addition to an escalation's summary (a complaint's part is at most 2000).
SUMMARY_CHARS = 2000
#: How long one staff send may hold WeChat's window for its identity.
WINDOW_LOCK_SECONDS = 30


class ConsoleError(Exception):
    def __init__(self, status_code: int, detail: str) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.detail = detail


class Actor(Protocol):
    """The staff member acting in the console (crm_backend.staff.deps.CurrentStaff fits)."""

    @property
    def id(self) -> int: ...

    @property
    def display_name(self) -> str: ...

    @property
    def role(self) -> StaffRole: ...

    @property
    def team_ids(self) -> frozenset[int]: ...

    @property
    def sees_all_teams(self) -> bool: ...


async def get_or_create_team(session: AsyncSession, key_or_name: str) -> Team:
    name = TEAM_NAMES.get(key_or_name, key_or_name)
    team = await session.scalar(select(Team).where(Team.name == name))
    if team is None:
        try:
            async with session.begin_nested():
                team = Team(name=name)
                session.add(team)
                await session.flush()
        except IntegrityError:
            team = await session.scalar(select(Team).where(Team.name == name))
    assert team is not None
    return team


def summary_with(summary: str | None, more: str | None) -> str | None:
    """An escalation's summary with more of the patient's words below it (said once only)."""
    more = (more or "").strip()[:SUMMARY_CHARS]
    if not more or (summary and more in summary):
        return summary
    return f"{summary}\n{more}" if summary else more


def sender_id(identity: WeChatIdentity) -> str:
    """The Rasa sender id of a WeChat identity (as the processing pipeline uses it)."""
    return rasa_sender(identity.app_id, identity.openid)


class Escalations:
    """Escalation operations bound to one process's runtime."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.events = ConsoleEvents(runtime.redis, runtime.settings)

    # -- the single way in ---------------------------------------------------------------------

    async def escalate(
        self,
        conversation_id: int,
        *,
        reason: str,
        priority: Priority = Priority.NORMAL,
        team: str = "service",
        summary: str | None = None,
    ) -> Escalation:
        """Hand the conversation to people; idempotent while an escalation is open (a new `summary`
        is added to its own)."""
        now = self.runtime.clock()
        async with self.runtime.db.sessions() as session:
            conversation = await session.get(Conversation, conversation_id)
            if conversation is None:
                raise ConsoleError(404, "no such conversation")
            if await self._named_red_flags(session, conversation_id):
                priority = Priority.URGENT
            existing = await self._open_escalation(session, conversation_id)
            if existing is not None:
                raised = Priority(priority).rank < existing.priority_rank
                if raised:
                    self._raise_priority(existing, Priority(priority))
                told = summary_with(existing.summary, summary)
                changed = raised or told != existing.summary
                if changed:
                    existing.summary = told
                    await session.commit()
                # A retry after a crash may find the escalation but not yet the tracker paused.
                identity = await session.get(WeChatIdentity, conversation.identity_id)
                if identity is not None:
                    await self._set_bot_paused(identity, paused=True)
                if changed:
                    await self.publish_escalation("escalation.updated", existing.id)
                return existing
            target = await get_or_create_team(session, team)
            escalation = Escalation(
                conversation_id=conversation_id,
                team_id=target.id,
                reason=reason,
                summary=summary_with(None, summary),
                priority=Priority(priority),
                priority_rank=Priority(priority).rank,
                created_at=now,
                sla_due_at=sla_due_at(self.runtime.settings, now, Priority(priority)),
            )
            session.add(escalation)
            conversation.status = ConversationStatus.ESCALATED
            conversation.rating_escalation_id = None
            try:
                await session.flush()
            except IntegrityError:  # another caller opened one a moment ago
                await session.rollback()
                again = await self._open_escalation(session, conversation_id)
                assert again is not None
                return again
            notice = await self._waiting_notice(session, escalation, now)
            add_outbound(session, conversation, SenderType.SYSTEM, notice)
            identity = await session.get(WeChatIdentity, conversation.identity_id)
            await session.commit()
        log.info("conversation %s escalated to %s (%s, %s)", conversation_id, target.name, reason, priority)
        await self.runtime.outbound.add({"conversation_id": str(conversation_id)})
        assert identity is not None
        await self._set_bot_paused(identity, paused=True)
        await self.publish_escalation("escalation.created", escalation.id)
        await self.auto_assign(escalation.team_id)
        return escalation

    async def _named_red_flags(self, session: AsyncSession, conversation_id: int) -> bool:
        """Did the red-flag screen find an emergency in the patient's messages (red_flag_screen.py)
        since the conversation's last escalation was resolved? Then whatever raised this one, it
        is urgent."""
        since = await session.scalar(
            select(func.max(Escalation.resolved_at)).where(
                Escalation.conversation_id == conversation_id, Escalation.status == EscalationStatus.RESOLVED
            )
        )
        query = select(Message.extra).where(
            Message.conversation_id == conversation_id,
            Message.direction == Direction.IN,
            Message.extra.is_not(None),
        )
        if since is not None:
            query = query.where(Message.created_at > since)
        return any(RED_FLAG_MARK in (extra or {}) for extra in (await session.scalars(query)).all())

    async def _hold(self, session: AsyncSession, escalation: Escalation, actor: Actor) -> None:
        """Writing in a queued chat claims it; one another agent has stays theirs (supervisors may).
        A chat now with another team is not taken over by writing in it: it is refused (audited)."""
        if not (actor.sees_all_teams or escalation.team_id in actor.team_ids):
            raise AccessRefused(
                "this conversation is now with another team",
                action="escalation.claim",
                object_type="escalation",
                object_id=escalation.id,
            )
        if escalation.status == EscalationStatus.QUEUED:
            if not await self._take(session, escalation.id, actor.id):
                raise ConsoleError(409, "already taken by someone else")
            await session.refresh(escalation)
        elif escalation.assigned_to_id != actor.id and not actor.sees_all_teams:
            raise ConsoleError(409, "another agent has this conversation")

    async def _open_escalation(self, session: AsyncSession, conversation_id: int) -> Escalation | None:
        return await session.scalar(
            select(Escalation).where(
                Escalation.conversation_id == conversation_id, Escalation.status != EscalationStatus.RESOLVED
            )
        )

    async def _waiting_notice(self, session: AsyncSession, escalation: Escalation, now: datetime) -> str:
        settings = self.runtime.settings
        if not is_staffed(settings, now):
            opening = describe_opening(next_opening(settings, now), now)
            return (
                f"现在是非工作时间（人工服务时间 {settings.staffed_hours}），您的消息已经记录并排队，"
                f"工作人员将在{opening}上班后尽快回复您。如病情紧急，请立即拨打 120 或前往急诊。"
            )
        ahead = await waiting.ahead_of(session, escalation)
        online = await session.scalar(
            select(func.count())
            .select_from(TeamMembership)
            .join(Staff, Staff.id == TeamMembership.staff_id)
            .where(
                TeamMembership.team_id == escalation.team_id, Staff.presence == Presence.online, Staff.active
            )
        )
        minutes = max(1, math.ceil((ahead + 1) * MINUTES_PER_CHAT / max(online or 0, 1)))
        return f"已为您转接人工服务，前面还有 {ahead} 位，预计等待约 {minutes} 分钟，请稍候。"

    async def _set_bot_paused(self, identity: WeChatIdentity, *, paused: bool) -> None:
        """Pause or resume Rasa's tracker so the bot's state matches who has the chat."""
        # Rasa's server does not percent-decode the id in the path: an escaped ':' would name
        # another tracker than the one the REST channel keeps for this patient.
        sender = quote(sender_id(identity), safe=":")
        settings = self.runtime.settings
        bot = BotGateway(settings.rasa_urls, self.runtime.http, settings.rasa_timeout_seconds)
        try:
            await bot.set_paused(sender, paused=paused)
        except BotUnavailable as exc:
            # The gateway already routes by conversation status; the tracker catches up on resume.
            log.warning(
                "could not %s Rasa tracker for %s: %s", "pause" if paused else "resume", identity.id, exc
            )

    # -- queue ---------------------------------------------------------------------------------

    async def auto_assign(self, team_id: int) -> list[int]:
        """Round-robin the team's queued escalations to online members under their capacity."""
        assigned: list[int] = []
        lock = self.runtime.redis.lock(self.runtime.settings.key("lock", "assign", team_id), timeout=30)
        async with lock:
            async with self.runtime.db.sessions() as session:
                queued = (
                    await session.scalars(
                        select(Escalation)
                        .where(Escalation.team_id == team_id, Escalation.status == EscalationStatus.QUEUED)
                        .order_by(Escalation.priority_rank, Escalation.created_at)
                    )
                ).all()
                for escalation in queued:
                    agent = await self._next_free_member(session, team_id)
                    if agent is None:
                        break
                    won = await self._take(session, escalation.id, agent.id)
                    if won:
                        agent.last_assigned_at = datetime.now(UTC)
                        assigned.append(escalation.id)
                await session.commit()
        for escalation_id in assigned:
            await self.publish_escalation("escalation.updated", escalation_id)
        return assigned

    async def _next_free_member(self, session: AsyncSession, team_id: int) -> Staff | None:
        load = (
            select(func.count())
            .select_from(Escalation)
            .where(Escalation.assigned_to_id == Staff.id, Escalation.status == EscalationStatus.ASSIGNED)
            .scalar_subquery()
        )
        return await session.scalar(
            select(Staff)
            .join(TeamMembership, TeamMembership.staff_id == Staff.id)
            .where(
                TeamMembership.team_id == team_id,
                Staff.presence == Presence.online,
                Staff.active,
                load < Staff.capacity,
            )
            .order_by(Staff.last_assigned_at.is_not(None), Staff.last_assigned_at, Staff.id)
            .limit(1)
        )

    async def _take(self, session: AsyncSession, escalation_id: int, staff_id: int) -> bool:
        """The atomic step of claiming: only one UPDATE can move a queued escalation."""
        result = await session.execute(
            update(Escalation)
            .where(Escalation.id == escalation_id, Escalation.status == EscalationStatus.QUEUED)
            .values(status=EscalationStatus.ASSIGNED, assigned_to_id=staff_id, assigned_at=datetime.now(UTC))
        )
        return result.rowcount == 1

    async def claim(self, escalation_id: int, actor: Actor) -> Escalation:
        async with self.runtime.db.sessions() as session:
            escalation = await self._visible(session, escalation_id, actor)
            if escalation.status == EscalationStatus.ASSIGNED and escalation.assigned_to_id == actor.id:
                return escalation
            if not await self._take(session, escalation_id, actor.id):
                raise ConsoleError(409, "already taken by someone else")
            await session.commit()
            await session.refresh(escalation)
        await self.publish_escalation("escalation.updated", escalation_id)
        return escalation

    async def _visible(self, session: AsyncSession, escalation_id: int, actor: Actor) -> Escalation:
        escalation = await session.get(Escalation, escalation_id)
        if escalation is None:
            raise ConsoleError(404, "no such escalation")
        if not actor.sees_all_teams and escalation.team_id not in actor.team_ids:
            conversation = await session.get(Conversation, escalation.conversation_id)
            raise AccessRefused(
                "this escalation belongs to another team",
                action="escalation.claim",
                object_type="escalation",
                object_id=escalation_id,
                patient_id=conversation.patient_id if conversation is not None else None,
            )
        return escalation

    async def visible_conversation(
        self, session: AsyncSession, conversation_id: int, actor: Actor, action: str = "conversation.view"
    ) -> Conversation:
        """Staff see a conversation if it is, or was, escalated to one of their teams; otherwise the
        refusal of `action` is audited (AccessRefused)."""
        conversation = await session.get(Conversation, conversation_id)
        if conversation is None:
            raise ConsoleError(404, "no such conversation")
        if actor.sees_all_teams:
            return conversation
        team_ids = set(
            (
                await session.scalars(
                    select(Escalation.team_id).where(Escalation.conversation_id == conversation_id)
                )
            ).all()
        )
        if not team_ids & actor.team_ids:
            raise AccessRefused(
                "this conversation belongs to another team",
                action=action,
                object_type="conversation",
                object_id=conversation_id,
                patient_id=conversation.patient_id,
            )
        return conversation

    async def readable_conversation(
        self, session: AsyncSession, conversation_id: int, actor: Actor
    ) -> Conversation:
        """Reading is wider than working: besides a chat escalated to their teams, staff read any
        chat of a patient they may open (escalations/access.py), one never escalated included."""
        conversation = await session.get(Conversation, conversation_id)
        if conversation is None:
            raise ConsoleError(404, "no such conversation")
        if await may_view(session, actor, conversation.patient_id):
            return conversation
        return await self.visible_conversation(session, conversation_id, actor)

    async def window_of(self, session: AsyncSession, conversation: Conversation) -> ReplyWindow:
        """WeChat's customer-service window of the conversation's WeChat identity, now."""
        identity = await session.get(WeChatIdentity, conversation.identity_id)
        assert identity is not None  # identity_id is NOT NULL
        return await reply_window(session, identity, self.runtime.clock())

    async def _require_window(self, session: AsyncSession, conversation: Conversation) -> None:
        """409 when WeChat would refuse a customer-service message now (45015/45047)."""
        window = await self.window_of(session, conversation)
        if not window.is_open:
            raise ConsoleError(409, WINDOW_REFUSALS[window.state])

    @contextlib.asynccontextmanager
    async def _window_lock(self, identity_id: int) -> AsyncIterator[None]:
        """Two staff sending at once must not both take the window's last message. A lock that ran
        out while the message was stored is no error: the message is stored and goes out."""
        lock = self.runtime.redis.lock(
            self.runtime.settings.key("lock", "window", identity_id), timeout=WINDOW_LOCK_SECONDS
        )
        await lock.acquire()
        try:
            yield
        finally:
            with contextlib.suppress(LockNotOwnedError):
                await lock.release()

    # -- working the chat ----------------------------------------------------------------------

    async def reply(self, conversation_id: int, actor: Actor, text: str) -> Message:
        text = text.strip()
        if not text:
            raise ConsoleError(400, "empty reply")
        if len(text) > 2000:
            raise ConsoleError(400, "reply longer than 2000 characters")
        identity_id = await self._identity_of(conversation_id)
        async with self._window_lock(identity_id), self.runtime.db.sessions() as session:
            conversation = await self.visible_conversation(
                session, conversation_id, actor, "conversation.reply"
            )
            escalation = await self._open_escalation(session, conversation_id)
            if escalation is None:
                raise ConsoleError(409, "the conversation is not escalated")
            await self._require_window(session, conversation)
            await self._hold(session, escalation, actor)
            message = add_outbound(session, conversation, SenderType.AGENT, text, agent_id=actor.id)
            if escalation.first_response_at is None:
                escalation.first_response_at = self.runtime.clock()
            await session.commit()
        await self._staff_wrote(conversation, message, actor)
        # Announce the message before queueing it, so its delivery update always comes after it.
        await self.publish_message(message, team_id=escalation.team_id)
        await self.runtime.outbound.add({"conversation_id": str(conversation_id)})
        await self.publish_escalation("escalation.updated", escalation.id)
        return message

    async def _identity_of(self, conversation_id: int) -> int:
        async with self.runtime.db.sessions() as session:
            identity_id = await session.scalar(
                select(Conversation.identity_id).where(Conversation.id == conversation_id)
            )
        if identity_id is None:
            raise ConsoleError(404, "no such conversation")
        return identity_id

    async def start_message(
        self, conversation_id: int, actor: Actor, text: str, *, request: HTTPConnection | None = None
    ) -> Message:
        """A message staff start to the patient of a conversation they may read, inside WeChat's
        window (409 outside it). It goes into the identity's current conversation, which staff then
        hold (an escalation assigned to the sender, reason `staff_message`, no waiting notice): the
        patient's answer is a turn routed to staff like any reply to an escalated chat. Audited as
        `conversation.message_start`; a refusal as `conversation.message_refused`."""
        text = text.strip()
        if not text:
            raise ConsoleError(400, "empty message")
        if len(text) > 2000:
            raise ConsoleError(400, "message longer than 2000 characters")
        identity_id = await self._identity_of(conversation_id)
        now = self.runtime.clock()
        created = False
        async with self._window_lock(identity_id), self.runtime.db.sessions() as session:
            viewed = await self.readable_conversation(session, conversation_id, actor)
            window = await self.window_of(session, viewed)
            if not window.is_open:
                await audit(
                    session,
                    staff_id=actor.id,
                    action="conversation.message_refused",
                    object_type="conversation",
                    object_id=conversation_id,
                    patient_id=viewed.patient_id,
                    request=request,
                    detail={"window": window.state.value, "sent": window.sent},
                )
                await session.commit()
                raise ConsoleError(409, WINDOW_REFUSALS[window.state])
            identity = await session.get(WeChatIdentity, identity_id)
            assert identity is not None
            conversation = await current_conversation(session, identity, now)
            escalation = await self._open_escalation(session, conversation.id)
            if escalation is None:
                escalation = await self._staff_escalation(session, conversation, actor, now)
                created = True
            else:
                await self._hold(session, escalation, actor)
            message = add_outbound(session, conversation, SenderType.AGENT, text, agent_id=actor.id)
            if escalation.first_response_at is None:
                escalation.first_response_at = now
            await session.flush()
            await audit(
                session,
                staff_id=actor.id,
                action="conversation.message_start",
                object_type="conversation",
                object_id=conversation.id,
                patient_id=conversation.patient_id,
                request=request,
                detail={"from_conversation": conversation_id, "message_id": message.id},
            )
            await session.commit()
        if created:
            await self._set_bot_paused(identity, paused=True)
        await self._staff_wrote(conversation, message, actor)
        kind = "escalation.created" if created else "escalation.updated"
        await self.publish_escalation(kind, escalation.id)
        await self.publish_message(message, team_id=escalation.team_id)
        await self.runtime.outbound.add({"conversation_id": str(conversation.id)})
        return message

    async def _staff_wrote(self, conversation: Conversation, message: Message, actor: Actor) -> None:
        """Tell other domains that a person contacted the patient (follow-up's first contact); a
        failure there is logged, never in the way of the message already stored."""
        event = StaffWrote(
            conversation.id, conversation.identity_id, conversation.patient_id, message.created_at, actor.role
        )
        try:
            await self.runtime.events.publish(event)
        except Exception:
            log.exception("StaffWrote for conversation %s not handled", conversation.id)

    async def _staff_escalation(
        self, session: AsyncSession, conversation: Conversation, actor: Actor, now: datetime
    ) -> Escalation:
        """The escalation through which staff hold a chat they started, assigned to them, in the team
        that last had the patient if they belong to it, else in their own (or the service team)."""
        last_team = await session.scalar(
            select(Escalation.team_id)
            .join(Conversation, Conversation.id == Escalation.conversation_id)
            .where(Conversation.identity_id == conversation.identity_id)
            .order_by(Escalation.id.desc())
            .limit(1)
        )
        if last_team is not None and (actor.sees_all_teams or last_team in actor.team_ids):
            team_id = last_team
        elif actor.team_ids:
            team_id = min(actor.team_ids)
        else:
            team_id = (await get_or_create_team(session, "service")).id
        escalation = Escalation(
            conversation_id=conversation.id,
            team_id=team_id,
            reason=STAFF_MESSAGE,
            priority=Priority.NORMAL,
            priority_rank=Priority.NORMAL.rank,
            status=EscalationStatus.ASSIGNED,
            assigned_to_id=actor.id,
            assigned_at=now,
            created_at=now,
            sla_due_at=sla_due_at(self.runtime.settings, now, Priority.NORMAL),
        )
        session.add(escalation)
        conversation.status = ConversationStatus.ESCALATED
        conversation.rating_escalation_id = None
        try:
            await session.flush()
        except IntegrityError:  # someone escalated it a moment ago: answer again
            raise ConsoleError(409, "the conversation was escalated meanwhile; try again") from None
        return escalation

    async def add_note(self, conversation_id: int, actor: Actor, text: str) -> ConversationNote:
        text = text.strip()
        if not text:
            raise ConsoleError(400, "empty note")
        async with self.runtime.db.sessions() as session:
            await self.visible_conversation(session, conversation_id, actor, "conversation.note")
            escalation = await self._open_escalation(session, conversation_id)
            note = ConversationNote(
                conversation_id=conversation_id,
                escalation_id=escalation.id if escalation else None,
                author_id=actor.id,
                text=text,
            )
            session.add(note)
            await session.commit()
        await self.events.publish(
            {
                "type": "note.created",
                "conversation_id": conversation_id,
                "team_id": escalation.team_id if escalation else None,
                "note": {
                    "id": note.id,
                    "text": note.text,
                    "author": {"id": actor.id, "display_name": actor.display_name},
                    "created_at": note.created_at.isoformat(),
                },
            }
        )
        return note

    async def transfer(
        self,
        conversation_id: int,
        actor: Actor,
        *,
        team_id: int | None,
        staff_id: int | None,
        note: str | None,
    ) -> Escalation:
        if team_id is None and staff_id is None:
            raise ConsoleError(400, "name a team or a staff member")
        async with self.runtime.db.sessions() as session:
            await self.visible_conversation(session, conversation_id, actor, "conversation.transfer")
            escalation = await self._open_escalation(session, conversation_id)
            if escalation is None:
                raise ConsoleError(409, "the conversation is not escalated")
            if staff_id is not None:
                target = await session.get(Staff, staff_id)
                if target is None or not target.active:
                    raise ConsoleError(400, "no such active staff member")
                team_id = await self._team_for(session, target, team_id, current=escalation.team_id)
                escalation.assigned_to_id = staff_id
                escalation.status = EscalationStatus.ASSIGNED
                escalation.assigned_at = datetime.now(UTC)
            else:
                escalation.assigned_to_id = None
                escalation.status = EscalationStatus.QUEUED
                escalation.assigned_at = None
            if await session.get(Team, team_id) is None:
                raise ConsoleError(400, "no such team")
            escalation.team_id = team_id
            if note and note.strip():
                session.add(
                    ConversationNote(
                        conversation_id=conversation_id,
                        escalation_id=escalation.id,
                        author_id=actor.id,
                        text=f"[转接] {note.strip()}",
                    )
                )
            await session.commit()
        await self.publish_escalation("escalation.updated", escalation.id)
        if escalation.status == EscalationStatus.QUEUED:
            await self.auto_assign(escalation.team_id)
        return escalation

    async def _team_for(
        self, session: AsyncSession, target: Staff, wanted: int | None, *, current: int
    ) -> int:
        """The team a chat handed to `target` goes to, so that they can see it: the team asked for
        (400 unless they may work there), else the current one if theirs, else their own team."""
        if target.role in SUPERVISING_ROLES:
            return wanted or current
        member_of = set(
            (
                await session.scalars(
                    select(TeamMembership.team_id).where(TeamMembership.staff_id == target.id)
                )
            ).all()
        )
        if wanted is not None:
            if wanted not in member_of:
                raise ConsoleError(400, "that staff member is not in that team")
            return wanted
        if current in member_of:
            return current
        if not member_of:
            raise ConsoleError(400, "that staff member belongs to no team")
        return min(member_of)

    async def resolve(self, conversation_id: int, actor: Actor) -> Escalation:
        async with self.runtime.db.sessions() as session:
            conversation = await self.visible_conversation(
                session, conversation_id, actor, "conversation.resolve"
            )
            escalation = await self._open_escalation(session, conversation_id)
            if escalation is None:
                raise ConsoleError(409, "the conversation is not escalated")
            now = self.runtime.clock()
            escalation.status = EscalationStatus.RESOLVED
            escalation.resolved_at = now
            escalation.resolved_by_id = actor.id
            conversation.status = ConversationStatus.BOT
            conversation.rating_escalation_id = escalation.id
            add_outbound(session, conversation, SenderType.SYSTEM, RATING_QUESTION)
            identity = await session.get(WeChatIdentity, conversation.identity_id)
            await session.commit()
        assert identity is not None
        await self._set_bot_paused(identity, paused=False)
        await self.runtime.outbound.add({"conversation_id": str(conversation_id)})
        await self.publish_escalation("escalation.updated", escalation.id)
        await self.auto_assign(escalation.team_id)
        return escalation

    # -- events --------------------------------------------------------------------------------

    async def publish_escalation(self, kind: str, escalation_id: int) -> None:
        from crm_backend.escalations.views_model import queue_item

        async with self.runtime.db.sessions() as session:
            escalation = await session.get(Escalation, escalation_id)
            if escalation is None:
                return
            item = (await queue_item(session, escalation, self.runtime.clock())).model_dump(mode="json")
        await self.events.publish(
            {
                "type": kind,
                "team_id": escalation.team_id,
                "conversation_id": escalation.conversation_id,
                "escalation": item,
            }
        )

    async def publish_message(
        self, message: Message, *, team_id: int | None, kind: str = "message.created"
    ) -> None:
        await self._publish_message(message.id, message.conversation_id, team_id=team_id, kind=kind)

    async def _publish_message(
        self, message_id: int, conversation_id: int, *, team_id: int | None, kind: str
    ) -> None:
        from crm_backend.escalations.views_model import message_view

        async with self.runtime.db.sessions() as session:
            fresh = await session.get(Message, message_id)
            if fresh is None:
                return
            view = (await message_view(session, fresh)).model_dump(mode="json")
        await self.events.publish(
            {"type": kind, "team_id": team_id, "conversation_id": conversation_id, "message": view}
        )

    async def publish_delivery(self, message_id: int, conversation_id: int) -> None:
        """Tell the console how a message in a (once) escalated conversation was delivered."""
        team_id = await self._latest_team(conversation_id)
        if team_id is not None:
            await self._publish_message(message_id, conversation_id, team_id=team_id, kind="message.updated")

    async def patient_wrote(
        self, message_id: int, conversation_id: int, team_id: int | None = None, route: str = "staff"
    ) -> None:
        """A patient's message reached staff (the STAFF or EMERGENCY route): red flags make the
        escalation urgent, a patient still waiting for a person may be acknowledged (waiting.py; the worker
        that processed the message delivers it), and the console is told."""
        now = datetime.now(UTC)
        raised: int | None = None
        async with self.runtime.db.sessions() as session:
            message = await session.get(Message, message_id)
            conversation = await session.get(Conversation, conversation_id)
            escalation = await self._open_escalation(session, conversation_id)
            if message is not None and conversation is not None and escalation is not None:
                if RED_FLAG_MARK in (message.extra or {}) and escalation.priority != Priority.URGENT:
                    self._raise_priority(escalation, Priority.URGENT)
                    raised = escalation.id
                await waiting.acknowledge(
                    session, self.runtime.settings, escalation, conversation, message, now, Route(route)
                )
                await session.commit()
        await self.publish_patient_message(message_id, conversation_id, team_id)
        if raised is not None:
            log.info("escalation %s made urgent: the red-flag screen found an emergency", raised)
            await self.publish_escalation("escalation.updated", raised)

    def _raise_priority(self, escalation: Escalation, priority: Priority) -> None:
        """A higher priority, and the sooner SLA it brings (counted from when the chat arrived)."""
        escalation.priority = priority
        escalation.priority_rank = priority.rank
        due = sla_due_at(self.runtime.settings, escalation.created_at, priority)
        escalation.sla_due_at = min(escalation.sla_due_at, due)

    async def publish_patient_message(
        self, message_id: int, conversation_id: int, team_id: int | None = None
    ) -> None:
        """A patient's message in an escalated conversation, for the console (not the bot)."""
        team_id = team_id if team_id is not None else await self._latest_team(conversation_id)
        await self._publish_message(message_id, conversation_id, team_id=team_id, kind="message.created")

    async def _latest_team(self, conversation_id: int) -> int | None:
        async with self.runtime.db.sessions() as session:
            return await session.scalar(
                select(Escalation.team_id)
                .where(Escalation.conversation_id == conversation_id)
                .order_by(Escalation.id.desc())
                .limit(1)
            )

    @staticmethod
    async def record_rating(session: AsyncSession, escalation_id: int, score: int, at: datetime) -> None:
        """The patient's 1-5 rating of a resolved escalation, in the caller's transaction (the one
        that records the answer); the first answer counts."""
        await session.execute(
            update(Escalation)
            .where(Escalation.id == escalation_id, Escalation.satisfaction.is_(None))
            .values(satisfaction=score, satisfaction_at=at)
        )
