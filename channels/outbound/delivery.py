"""Deliver answers through WeChat's customer-service API, in order.

Two ways in: `deliver_conversation` sends whatever a conversation has PENDING, under a per-conversation
lock (agent messages, reminders, retries, the sweeper); `send_claimed` sends a bot turn's answers,
which processing stored already claimed (SENDING), so they need neither the lock nor a lookup.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update

from channels.outbound.access_token import AccessTokenStore
from channels.outbound.events import DeliveryRecorded
from channels.outbound.wechat_api import (
    RECIPIENT_ERRORS,
    TOKEN_ERRORS,
    WINDOW_ERRORS,
    WeChatAPI,
    WeChatAPIError,
    WeChatUnavailable,
    WeChatUncertain,
)
from crm_backend.config import Settings
from crm_backend.conversations.answers import Answered, Deliver, release_claims
from crm_backend.conversations.models import Conversation, DeliveryStatus, Direction, Message, SenderType
from crm_backend.database.outage import unreachable
from crm_backend.patients.models import WeChatIdentity
from crm_backend.runtime import Runtime

log = logging.getLogger(__name__)

#: How long the outcome of a send that happened is kept trying to be recorded while the database is
#: out of reach (longer than the webhook's wait: nothing else knows that outcome), and how often.
RECORD_WAIT_SECONDS = 120.0
RECORD_RETRY_SECONDS = 0.5


@dataclass(frozen=True)
class WeChatCall:
    """How one call ended: an answer, WeChat's refusal, or WeChat out of reach; and the tries it took."""

    attempts: int
    answer: dict[str, Any] | None = None
    refused: WeChatAPIError | None = None
    unreachable: str | None = None
    #: The send went out and no answer came back: it is not sent again (it may have arrived).
    uncertain: str | None = None


class Outbox:
    """Everything needed to send; one per worker process."""

    def __init__(self, runtime: Runtime) -> None:
        settings = runtime.settings
        self.runtime = runtime
        self.api = WeChatAPI(settings.wechat_api_base, runtime.wechat_http)
        self.tokens = AccessTokenStore(
            runtime.redis, self.api, settings.oa_appid, settings.oa_secret, settings.redis_prefix
        )

    async def deliver_conversation(self, conversation_id: int) -> bool:
        """Send what the conversation has pending, in order; False when WeChat could not be reached
        and messages wait for a later try."""
        settings = self.runtime.settings
        lock = self.runtime.redis.lock(
            settings.key("lock", "deliver", conversation_id), timeout=120, blocking_timeout=120
        )
        async with lock, self.runtime.db.sessions() as session:
            rows = await session.execute(
                select(Message, WeChatIdentity.openid)
                .join(Conversation, Message.conversation_id == Conversation.id)
                .join(WeChatIdentity, Conversation.identity_id == WeChatIdentity.id)
                .where(
                    Message.conversation_id == conversation_id,
                    Message.direction == Direction.OUT,
                    Message.delivery_status == DeliveryStatus.PENDING,
                )
                .order_by(Message.id)
            )
            waiting = rows.all()
            for message, openid in waiting:
                # Committed one by one: a crash after a send re-sends at most that one message.
                if message.msg_type == "template":
                    status, error, attempts, msgid = await self._send_template(openid, message.extra or {})
                    message.wechat_msg_id = msgid
                else:
                    status, error, attempts = await self._send_text(openid, message.content)
                if status == DeliveryStatus.PENDING and _too_old(message.created_at, settings):
                    status = DeliveryStatus.FAILED
                message.attempts += attempts
                message.delivery_status = status
                message.delivery_error = error
                if status == DeliveryStatus.SENT:
                    message.sent_at = datetime.now(UTC)
                await session.commit()
                if status == DeliveryStatus.PENDING:
                    # WeChat is out of reach: this one is tried again later (the sweeper) and the
                    # messages after it wait, so the patient reads them in order.
                    await self._hold_back(openid)
                    log.warning(
                        "message %s to %s: WeChat out of reach, queued (%s)", message.id, openid, error
                    )
                    return False
                if status != DeliveryStatus.SENT:
                    log.warning("message %s to %s: %s (%s)", message.id, openid, status, error)
                if message.sender_type in (SenderType.AGENT, SenderType.SYSTEM):
                    await self.announce_delivery(message.id, message.conversation_id)
        if waiting:
            await self.runtime.redis.delete(_held_back_key(settings, waiting[0][1]))
        return True

    async def held_back(self, openid: str) -> bool:
        """Whether messages to this patient wait for WeChat (new answers then queue behind them)."""
        return bool(await self.runtime.redis.exists(_held_back_key(self.runtime.settings, openid)))

    async def deliver_answered(self, answered: Answered, *, held_back: bool = False) -> bool:
        """Everything processing one push left to send: its claimed answers, then anything pending.

        Runs under the patient's lock, so WeChat gets one try per answer here, not the backoff
        retries. With `held_back` (older messages wait for WeChat) the answers go out after them,
        in order. Returns False when messages were left pending for the retry queue."""
        if answered.claimed and held_back:
            await release_claims(self.runtime.db, [o.message_id for o in answered.claimed])
            return await self.deliver_conversation(answered.conversation_id)
        if answered.claimed:
            try:
                if not await self.send_claimed(answered):
                    return False
            except Exception:
                # Hand what was not sent back as pending at once, so the retry queue the caller
                # falls back on can send it (the sweeper would, after CLAIM_LEASE, if this fails too).
                with contextlib.suppress(Exception):
                    await release_claims(self.runtime.db, [o.message_id for o in answered.claimed])
                raise
        if answered.pending:
            return await self.deliver_conversation(answered.conversation_id)
        return True

    @contextlib.asynccontextmanager
    async def delivering_to(self, openid: str) -> AsyncIterator[Deliver]:
        """The inline delivery for one drain of a patient's turns (InboundProcessor.process_patient).

        Whether older messages wait for WeChat is read while the turns are processed, so the
        answer does not wait for that read; a send that fails meanwhile holds the rest back."""
        held = asyncio.ensure_future(self.held_back(openid))
        waiting = False

        async def deliver(answered: Answered) -> None:
            nonlocal waiting
            # Delivered right here (no second queue hop on the patient's wait); the outbound
            # stream is the retry path (with backoff, outside the patient's lock), and the
            # sweeper catches a crash in between.
            try:
                waiting = waiting or await held
                if await self.deliver_answered(answered, held_back=waiting):
                    return
                waiting = True
            except Exception:
                log.exception("inline delivery for conversation %s failed; queued", answered.conversation_id)
            await self.runtime.outbound.add({"conversation_id": str(answered.conversation_id)})

        try:
            yield deliver
        finally:
            held.cancel()
            with contextlib.suppress(BaseException):
                await held

    async def send_claimed(self, answered: Answered) -> bool:
        """False when WeChat was out of reach: that answer and the rest are pending again."""
        for index, outgoing in enumerate(answered.claimed):
            payload = {"touser": answered.openid, "msgtype": "text", "text": {"content": outgoing.text}}
            call = await self.call_with_token(
                lambda token, payload=payload: self.api.send_custom_message(token, payload), max_failures=1
            )
            if call.unreachable is not None:
                await self._settle(
                    outgoing.message_id, DeliveryStatus.PENDING, call.unreachable, call.attempts
                )
                await release_claims(self.runtime.db, [o.message_id for o in answered.claimed[index + 1 :]])
                await self._hold_back(answered.openid)
                log.warning(
                    "message %s to %s: WeChat out of reach, queued", outgoing.message_id, answered.openid
                )
                return False
            status, error = _outcome(call)
            await self._settle(outgoing.message_id, status, error, call.attempts)
            if status != DeliveryStatus.SENT:
                log.warning("message %s to %s: %s (%s)", outgoing.message_id, answered.openid, status, error)
            if outgoing.sender == SenderType.SYSTEM:
                await self.announce_delivery(outgoing.message_id, outgoing.conversation_id)
        return True

    async def _hold_back(self, openid: str) -> None:
        """Mark the patient as waiting for WeChat: new answers queue behind what waits."""
        settings = self.runtime.settings
        ttl = max(1, int(settings.delivery_retry_seconds + settings.sweeper_grace_seconds * 2))
        await self.runtime.redis.set(_held_back_key(settings, openid), "1", ex=ttl)

    async def announce_delivery(self, message_id: int, conversation_id: int) -> None:
        """A staff or system message's outcome is stored: whoever shows it subscribes."""
        await self.runtime.events.publish(DeliveryRecorded(message_id, conversation_id))

    async def _settle(
        self, message_id: int, status: DeliveryStatus, error: str | None, attempts: int
    ) -> None:
        """How a claimed answer's send ended; only while it is still claimed.

        The send has happened: its outcome is known only here, so a database out of reach is
        waited for (up to RECORD_WAIT_SECONDS) rather than the outcome lost, which would leave the
        message `sending` until the sweeper's lease hands it out again and WeChat shows it twice."""
        statement = (
            update(Message)
            .where(Message.id == message_id, Message.delivery_status == DeliveryStatus.SENDING)
            .values(
                delivery_status=status,
                delivery_error=error,
                attempts=Message.attempts + attempts,
                sent_at=datetime.now(UTC) if status == DeliveryStatus.SENT else None,
            )
        )
        deadline = asyncio.get_running_loop().time() + RECORD_WAIT_SECONDS
        while True:
            try:
                async with self.runtime.db.single_statements.connect() as connection:
                    await connection.execute(statement)
                return
            except Exception as failure:
                if not unreachable(failure) or asyncio.get_running_loop().time() >= deadline:
                    raise
                log.warning(
                    "message %s sent (%s); database out of reach, recording again", message_id, status
                )
                await asyncio.sleep(RECORD_RETRY_SECONDS)

    async def call_with_token(
        self, send: Callable[[str], Awaitable[dict[str, Any]]], *, max_failures: int | None = None
    ) -> WeChatCall:
        """One WeChat API call with the shared access token: a stale token is refreshed once, an
        unreachable WeChat retried with backoff up to `max_failures` tries (DELIVERY_MAX_ATTEMPTS).
        Every sender uses it."""
        settings = self.runtime.settings
        max_failures = max_failures or settings.delivery_max_attempts
        refreshed = False
        attempts = failures = 0
        while True:
            attempts += 1
            token = ""
            try:
                token = await self.tokens.get()
                return WeChatCall(attempts, answer=await send(token))
            except WeChatAPIError as exc:
                if exc.errcode in TOKEN_ERRORS and not refreshed:
                    refreshed = True
                    await self.tokens.refresh(stale=token or None)
                    continue
                return WeChatCall(attempts, refused=exc)
            except WeChatUncertain as exc:
                if token:  # the send itself went out: another try could deliver it twice
                    return WeChatCall(attempts, uncertain=f"{exc}")
                failures += 1
                if failures >= max_failures:
                    return WeChatCall(attempts, unreachable=f"unreachable after {failures} attempts: {exc}")
                await asyncio.sleep(settings.delivery_backoff_seconds * 2 ** (failures - 1))
            except WeChatUnavailable as exc:
                failures += 1
                if failures >= max_failures:
                    return WeChatCall(attempts, unreachable=f"unreachable after {failures} attempts: {exc}")
                await asyncio.sleep(settings.delivery_backoff_seconds * 2 ** (failures - 1))

    async def _send_text(self, openid: str, content: str) -> tuple[DeliveryStatus, str | None, int]:
        """How the send ended, WeChat's reason if it did not go out, and the tries it took."""
        payload = {"touser": openid, "msgtype": "text", "text": {"content": content}}
        call = await self.call_with_token(lambda token: self.api.send_custom_message(token, payload))
        status, error = _outcome(call)
        return status, error, call.attempts

    async def _send_template(
        self, openid: str, extra: dict[str, Any]
    ) -> tuple[DeliveryStatus, str | None, int, int | None]:
        """A stored template message (Message.extra["template"]: template_id, data, url): the
        invitation outside the customer-service window. Also WeChat's msgid when it went out."""
        template = extra.get(TEMPLATE_KEY) or {}
        if not template.get("template_id"):
            return DeliveryStatus.FAILED, "no template configured", 0, None
        payload = {"touser": openid, **template}
        call = await self.call_with_token(lambda token: self.api.send_template_message(token, payload))
        status, error = _outcome(call)
        msgid = call.answer.get("msgid") if call.answer is not None else None
        return status, error, call.attempts, int(msgid) if msgid else None


TEMPLATE_KEY = "template"


#: Marks a message whose send got no answer: it may have reached the patient.
UNCERTAIN = "no answer from WeChat; the message may have reached the patient"


def _held_back_key(settings: Settings, openid: str) -> str:
    return settings.key("held-back", openid)


def _too_old(created_at: datetime, settings: Settings) -> bool:
    """A queued message is retried for DELIVERY_RETRY_SECONDS, then marked failed."""
    created = created_at if created_at.tzinfo else created_at.replace(tzinfo=UTC)
    return datetime.now(UTC) - created > timedelta(seconds=settings.delivery_retry_seconds)


def _outcome(call: WeChatCall) -> tuple[DeliveryStatus, str | None]:
    if call.answer is not None:
        return DeliveryStatus.SENT, None
    if call.uncertain is not None:
        return DeliveryStatus.FAILED, f"{UNCERTAIN} ({call.uncertain})"
    if call.refused is not None:
        exc = call.refused
        reason = f"{exc.errcode} {exc.errmsg}"
        if exc.errcode in WINDOW_ERRORS or exc.errcode in RECIPIENT_ERRORS:
            return DeliveryStatus.UNDELIVERABLE, reason
        return DeliveryStatus.FAILED, reason
    return DeliveryStatus.PENDING, call.unreachable
