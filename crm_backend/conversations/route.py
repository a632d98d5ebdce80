"""Where one turn of a conversation goes: every rule that decides it, written once.

A turn is a patient's push or a dialogue the bot starts (turns.py). What decides its route comes in
two parts:

- the turn itself (its type, the typed text, how often it was tried), and
- the patient's state (`RouteState`): the latest consent decision, the open conversation and
  whether staff hold it, a rating still asked for. Each of these has ONE SQLAlchemy expression
  here; every path reads them through it: the pending read (pending.py), the general recording
  (processing.py) and the one-statement bot turn on PostgreSQL (bot_turn.py), which re-reads
  them with `state_unchanged` and writes nothing when any of them moved.

`decide` is the only place that turns those facts into a route. On the STAFF route,
`acknowledge_waiting` is the only place that decides whether the patient, still waiting for a
person, is answered meanwhile (escalations supply what they know of the wait).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, func, select

from crm_backend.config import Settings
from crm_backend.consent import service as consent
from crm_backend.consent.models import HEALTH_INFORMATION, ConsentRecord
from crm_backend.conversations import red_flag_screen
from crm_backend.conversations.models import Conversation, ConversationStatus

#: A conversation idle this long is closed and the next turn starts a new one.
CONVERSATION_IDLE = timedelta(hours=24)

#: Turn types that are not a patient's push: a dialogue the bot starts (turns.py).
DIALOGUE = "dialogue"


class Route(enum.StrEnum):
    #: The red-flag screen found an emergency: call 120 now, escalated urgent to nursing. Decided
    #: before consent, staff, a rating or the bot (a form) see the message.
    EMERGENCY = "emergency"
    #: Tried too often: the patient is told a person will follow up.
    GIVE_UP = "give_up"
    #: subscribe / unsubscribe and other events.
    EVENT = "event"
    #: The consent dialogue answers (consent_dialogue.py); the bot never sees the text.
    CONSENT = "consent"
    #: Staff hold the chat: the message goes to their console, the bot stays silent.
    STAFF = "staff"
    #: An image, a voice message without recognised text, another type: a fixed acknowledgement.
    MEDIA = "media"
    #: The rating dialogue answers (rating_dialogue.py).
    RATING = "rating"
    #: Rasa answers.
    BOT = "bot"
    #: A dialogue the bot starts must wait: staff hold the chat, or the patient has not consented.
    WAIT = "wait"


# -- the state, as SQL ---------------------------------------------------------------------------


def latest_consent(identity_id: Any) -> ColumnElement[Any]:
    """The identity's latest decision on health information (NULL: never answered)."""
    return (
        select(ConsentRecord.granted)
        .where(ConsentRecord.identity_id == identity_id, ConsentRecord.purpose == HEALTH_INFORMATION)
        .order_by(ConsentRecord.decided_at.desc(), ConsentRecord.id.desc())
        .limit(1)
        .correlate_except(ConsentRecord)
        .scalar_subquery()
    )


def open_conversation_id(identity_id: Any) -> ColumnElement[Any]:
    """The identity's open conversation: the newest one not closed (NULL: none)."""
    return (
        select(func.max(Conversation.id))
        .where(Conversation.identity_id == identity_id, Conversation.status != ConversationStatus.CLOSED)
        .correlate_except(Conversation)
        .scalar_subquery()
    )


@dataclass(frozen=True)
class RouteState:
    """The patient's side of a route, as `state_columns` reads it."""

    identity_id: int | None
    #: The latest consent decision (None: never answered).
    consent_granted: bool | None
    conversation_id: int | None
    conversation_status: str | None
    rating_pending: bool
    last_message_at: datetime | None

    @classmethod
    def of_row(cls, row: Any) -> RouteState:
        """From the six columns of `state_columns`, in their order."""
        return cls(
            identity_id=row[0],
            consent_granted=None if row[1] is None else bool(row[1]),
            conversation_id=row[2],
            conversation_status=row[3],
            rating_pending=row[4] is not None,
            last_message_at=row[5],
        )

    def at(self, seen_at: datetime) -> RouteState:
        """The state a turn seen at `seen_at` meets: an idle conversation is closed by it and a new
        one, the bot's with nothing pending, starts."""
        if self.last_message_at is None or not is_idle(self.last_message_at, seen_at):
            return self
        return replace(
            self,
            conversation_id=None,
            conversation_status=ConversationStatus.BOT,
            rating_pending=False,
            last_message_at=seen_at,
        )


def state_columns(identity: Any) -> list[Any]:
    """The state's columns, for a query that outer-joins Conversation on `open_conversation_join`."""
    return [
        identity.id,
        latest_consent(identity.id),
        Conversation.id,
        Conversation.status,
        Conversation.rating_escalation_id,
        Conversation.last_message_at,
    ]


def open_conversation_join(identity: Any) -> ColumnElement[bool]:
    return Conversation.id == open_conversation_id(identity.id)


def state_unchanged(
    identity_id: Any,
    conversation_id: Any,
    *,
    status: str,
    rating_pending: bool,
    consent_granted: bool | None,
    last_message_at: Any,
) -> ColumnElement[bool]:
    """True while the state read before (these values) still holds for that conversation: the same
    expressions, compared with what was read. A later last message keeps an open chat open."""
    rating = Conversation.rating_escalation_id
    return and_(
        open_conversation_id(identity_id) == conversation_id,
        select(Conversation.id)
        .where(
            Conversation.id == conversation_id,
            Conversation.status == status,
            rating.is_not(None) if rating_pending else rating.is_(None),
            Conversation.last_message_at >= last_message_at,
        )
        .exists(),
        latest_consent(identity_id).is_(None)
        if consent_granted is None
        else latest_consent(identity_id) == consent_granted,
    )


def is_idle(last_message_at: datetime, seen_at: datetime) -> bool:
    return seen_at - last_message_at > CONVERSATION_IDLE


# -- the turn ------------------------------------------------------------------------------------


def typed_text(msg_type: str, payload: dict[str, Any]) -> str | None:
    """What the patient typed or said: a text, or a voice message's recognised text."""
    if msg_type == "text":
        return str(payload.get("Content") or "")
    if msg_type == "voice":
        return str(payload.get("Recognition") or "").strip() or None
    return None


@dataclass(frozen=True)
class Limits:
    """When a turn that keeps failing is given up on: tried more than `max_attempts` times AND
    waiting `retry_for` since it arrived. Time, not the count alone, so a short Rasa outage
    (during which reclaims and the patient's own messages retry the turn often) is waited out."""

    max_attempts: int
    retry_for: timedelta

    @classmethod
    def of(cls, settings: Settings) -> Limits:
        return cls(settings.max_processing_attempts, timedelta(seconds=settings.bot_retry_seconds))


@dataclass(frozen=True)
class Turn:
    msg_type: str
    #: typed_text() of a push; None for events, images, unrecognised voice, dialogues.
    text: str | None
    #: Processing attempts so far, this one included.
    attempts: int
    #: A dialogue that talks about health needs consent; a notice (a reminder) does not.
    needs_consent: bool = True
    #: How long since the turn arrived.
    waited: timedelta = timedelta(0)
    #: A dialogue outside the hospital-local hours it may start in (a check-in at night).
    quiet_hours: bool = False


def decide(turn: Turn, state: RouteState, limits: Limits) -> Route:
    """The route of `turn` in `state` (already `.at(seen_at)`).

    Only a turn given up on (its processing kept failing) comes before the red-flag screen; every
    patient message with text is screened, whoever holds the chat and whatever the consent."""
    if turn.attempts > limits.max_attempts and turn.waited >= limits.retry_for:
        return Route.GIVE_UP
    if turn.msg_type not in ("event", DIALOGUE) and red_flag_screen.is_emergency(turn.text):
        return Route.EMERGENCY
    if turn.msg_type == "event":
        return Route.EVENT
    if turn.msg_type == DIALOGUE:
        consented = state.consent_granted is True or not turn.needs_consent
        free = state.conversation_status != ConversationStatus.ESCALATED and consented
        return Route.BOT if free and not turn.quiet_hours else Route.WAIT
    escalated = state.conversation_status == ConversationStatus.ESCALATED
    if turn.text is not None:
        answer = consent.read_answer(turn.text)
        # Withdrawing is honoured whoever holds the chat (staff still see the message); otherwise
        # staff talk with the patient as they are, and only the bot needs consent.
        if answer is consent.ConsentAnswer.WITHDRAW or (not escalated and state.consent_granted is not True):
            return Route.CONSENT
    if escalated:
        return Route.STAFF
    if turn.text is None:
        return Route.MEDIA
    if state.rating_pending:
        # The rating dialogue looks first; a patient who moves on is handed to the bot.
        return Route.RATING
    return Route.BOT


# -- while staff hold the chat --------------------------------------------------------------------

#: Words of a patient asking for a person. Staff hold the chat, so the bot does not hear them.
PERSON_WORDS = ("人工", "真人", "客服", "转接")
#: A longer message is about something else, even if it names a person ("客服说明天…").
PERSON_REQUEST_MAX_CHARS = 12
_NOT_WORDS = re.compile(r"[\s\W_]+")


def asks_for_person(text: str | None) -> bool:
    """转人工, 人工客服, 我要找真人 …: a short message asking for a person."""
    if not text:
        return False
    plain = _NOT_WORDS.sub("", text)
    return len(plain) <= PERSON_REQUEST_MAX_CHARS and any(word in plain for word in PERSON_WORDS)


class WaitingAck(enum.StrEnum):
    #: The patient asked for a person again: always acknowledged.
    REPEATED_REQUEST = "repeated_request"
    #: Any other message while nobody answers: at most one per `every`.
    WAITING = "waiting"


@dataclass(frozen=True)
class StaffWait:
    """What escalations know of a chat staff hold when a patient's message reaches it."""

    #: A person has answered in this escalation.
    answered: bool
    #: The person who has the chat is online in the console.
    agent_online: bool
    #: The latest message a person wrote in this conversation (None: none yet).
    agent_last_wrote_at: datetime | None
    #: When the patient was last acknowledged while waiting (None: not yet).
    last_ack_at: datetime | None


def acknowledge_waiting(
    route: Route, text: str | None, wait: StaffWait, now: datetime, every: timedelta
) -> WaitingAck | None:
    """Whether a patient's message on the STAFF route is answered by the system, and how.

    A chat is attended once a person answered and is still there (online, or wrote within
    `every`); the system then stays out of it. Otherwise nobody answers (queued, assigned but not
    answered, or the agent away): a repeated request for a person is acknowledged every time,
    anything else at most once per `every`. The message itself always reaches the console."""
    if route is not Route.STAFF:
        return None  # answered on its own route (a consent withdrawal)
    recently = wait.agent_last_wrote_at is not None and now - wait.agent_last_wrote_at < every
    if wait.answered and (wait.agent_online or recently):
        return None
    if asks_for_person(text):
        return WaitingAck.REPEATED_REQUEST
    if wait.last_ack_at is None or now - wait.last_ack_at >= every:
        return WaitingAck.WAITING
    return None
