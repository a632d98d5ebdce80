"""Nothing a patient sent is lost and nothing is answered twice, whatever dies in between."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator

import httpx
import pytest
import redis.asyncio as aioredis
from sqlalchemy import select

from bench.fault_rig import Relay, postgres_address
from channels.outbound.delivery import UNCERTAIN
from crm_backend.config import SANDBOX_APPID
from crm_backend.conversations.models import (
    Conversation,
    DeliveryStatus,
    Direction,
    InboundMessage,
    InboundStatus,
    Message,
)
from crm_backend.database.core import Database
from crm_backend.escalations.models import Escalation
from crm_backend.patients.models import WeChatIdentity
from tests.support.settle import send_marker_and_wait
from tests.support.stack import Process, Stack, free_port, new_openid, wait_until, web_argv


async def _last_outbound(db: Database, openid: str) -> Message:
    from crm_backend.conversations.models import Conversation
    from crm_backend.patients.models import WeChatIdentity

    async with db.sessions() as session:
        message = await session.scalar(
            select(Message)
            .join(Conversation, Message.conversation_id == Conversation.id)
            .join(WeChatIdentity, Conversation.identity_id == WeChatIdentity.id)
            .where(WeChatIdentity.openid == openid, Message.direction == Direction.OUT)
            .order_by(Message.id.desc())
            .limit(1)
        )
    assert message is not None
    return message


async def _inbound(db: Database, openid: str, msg_id: int) -> InboundMessage | None:
    async with db.sessions() as session:
        return await session.scalar(
            select(InboundMessage).where(
                InboundMessage.openid == openid, InboundMessage.wechat_msg_id == msg_id
            )
        )


async def _wait_status(db: Database, openid: str, status: DeliveryStatus, timeout: float = 20) -> Message:
    for _ in range(int(timeout / 0.2)):
        message = await _last_outbound(db, openid)
        if message.delivery_status == status:
            return message
        await asyncio.sleep(0.2)
    raise AssertionError(f"last outbound message is {message.delivery_status}, not {status}")


async def test_worker_killed_before_answering_answers_once_after_restart(stack: Stack, db: Database) -> None:
    openid = await stack.consented_patient()
    before = len(stack.wechat.texts(openid))
    assert stack.worker is not None
    stack.worker.kill()
    try:
        push = stack.build("text", openid, content="你好")
        assert (await stack.post(push)).text == "success"
        # Stored, not yet answered: with no worker alive nothing can answer it.
        assert push.msg_id is not None
        stored = await _inbound(db, openid, push.msg_id)
        assert stored is not None and stored.status == InboundStatus.RECEIVED
        assert len(stack.wechat.texts(openid)) == before
    finally:
        stack.start_worker()
    await stack.wait_answers(openid, before + 1, timeout=40)
    # Pushes are processed in order: once a later one is answered, a second answer to the first
    # (a redelivered or reclaimed entry) would have been sent already.
    marked = await send_marker_and_wait(stack, openid, db=db, timeout=60)
    assert len(marked.others) == before + 1
    assert "挂号" in marked.others[before]


async def test_push_stored_but_never_queued_is_swept_up(stack: Stack) -> None:
    openid = await stack.consented_patient()
    before = len(stack.wechat.texts(openid))
    assert stack.worker is not None
    stack.worker.kill()
    try:
        await stack.say(openid, "你好")
        # The hand-over to the queue is lost, as if the web process died right after the commit.
        client = aioredis.Redis.from_url(stack.redis_url)
        await client.xtrim("cb:stream:inbound", maxlen=0)
        await client.aclose()
    finally:
        stack.start_worker()
    await stack.wait_answers(openid, before + 1, timeout=40)
    marked = await send_marker_and_wait(stack, openid, timeout=60)
    assert len(marked.others) == before + 1


async def test_entry_held_by_a_dead_consumer_is_reclaimed(stack: Stack) -> None:
    openid = await stack.consented_patient()
    before = len(stack.wechat.texts(openid))
    client = aioredis.Redis.from_url(stack.redis_url, decode_responses=True)
    assert stack.worker is not None
    stack.worker.kill()
    try:
        await stack.say(openid, "你好")
        # A consumer takes the entry and dies without acknowledging it.
        taken = await client.xreadgroup("workers", "dead-consumer", {"cb:stream:inbound": ">"}, count=100)
        assert taken and taken[0][1]
    finally:
        stack.start_worker()
    await stack.wait_answers(openid, before + 1, timeout=40)
    # The dead consumer's entry is reclaimed and acknowledged once it has been idle long enough.
    deadline = time.monotonic() + 30
    while (await client.xpending("cb:stream:inbound", "workers"))["pending"]:
        assert time.monotonic() < deadline, "the dead consumer's entry was never acknowledged"
        await asyncio.sleep(0.2)
    await client.aclose()
    marked = await send_marker_and_wait(stack, openid, timeout=60)
    assert len(marked.others) == before + 1


async def test_outside_48_hour_window_is_kept_as_undeliverable(stack: Stack, db: Database) -> None:
    openid = await stack.consented_patient()
    before = len(stack.wechat.texts(openid))
    stack.wechat.fault(api="custom_send", errcode=45015, errmsg="response out of time limit", times=1)
    await stack.say(openid, "你好")
    message = await _wait_status(db, openid, DeliveryStatus.UNDELIVERABLE)
    assert message.delivery_error and message.delivery_error.startswith("45015")
    # Kept, not retried: a later answer goes out, the refused one never does.
    marked = await send_marker_and_wait(stack, openid, db=db)
    assert len(marked.others) == before and marked.answers


async def test_expired_token_is_refreshed_once_and_the_message_goes_out(stack: Stack, db: Database) -> None:
    openid = await stack.consented_patient()
    before = len(stack.wechat.texts(openid))
    tokens_before = stack.wechat.stats()["token_requests"]
    stack.wechat.expire_tokens()
    await stack.say(openid, "你好")
    await stack.wait_answers(openid, before + 1)
    await _wait_status(db, openid, DeliveryStatus.SENT)
    assert stack.wechat.stats()["token_requests"] == tokens_before + 1

    stack.wechat.fault(api="custom_send", errcode=40001, errmsg="invalid credential", times=1)
    await stack.say(openid, "谢谢")
    await stack.wait_answers(openid, before + 2)
    assert stack.wechat.stats()["token_requests"] == tokens_before + 2


async def test_wechat_outage_is_retried_with_backoff(stack: Stack, db: Database) -> None:
    openid = await stack.consented_patient()
    before = len(stack.wechat.texts(openid))
    stack.wechat.fault(api="custom_send", http_status=503, times=2)
    await stack.say(openid, "你好")
    await stack.wait_answers(openid, before + 1)
    message = await _wait_status(db, openid, DeliveryStatus.SENT)
    assert message.attempts == 3
    marked = await send_marker_and_wait(stack, openid, db=db)
    assert len(marked.others) == before + 1


async def test_healthz_names_what_is_down(stack: Stack) -> None:
    port = free_port()
    closed = free_port()
    web = Process(
        "web-broken-actions", web_argv(port), stack.env(PORT=str(port), ACTION_SERVER_PORT=str(closed))
    ).start()
    try:
        wait_until(
            lambda: httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 503, 30, "healthz 503"
        )
        async with httpx.AsyncClient() as client:
            body = (await client.get(f"http://127.0.0.1:{port}/healthz")).json()
    finally:
        web.stop()
    assert body["components"]["action_server"]["status"] == "down"
    assert body["components"]["action_server"]["reason"]
    assert body["components"]["rasa"]["status"] == "ok"


async def test_new_patient_without_subscribe_event_is_asked_for_consent(stack: Stack) -> None:
    openid = new_openid()
    answers = await stack.converse(openid, "你好")
    assert any("健康信息" in text for text in answers)


async def test_consumers_recover_when_redis_loses_the_queues(stack: Stack) -> None:
    """Redis losing its data (a failover without persistence) deletes the streams and their group
    while every consumer is blocked reading them: they must recreate both and keep answering."""
    openid = await stack.consented_patient()
    client = aioredis.Redis.from_url(stack.redis_url)
    try:
        for _ in range(2):  # twice: a consumer that survived the first loss must survive the next
            before = len(stack.wechat.texts(openid))
            await client.delete("cb:stream:inbound", "cb:stream:outbound")
            await stack.say(openid, "你好")
            await stack.wait_answers(openid, before + 1, timeout=40)
    finally:
        await client.aclose()
    # Still a healthy worker, and nothing left over: the marker's answer comes next.
    marked = await send_marker_and_wait(stack, openid, timeout=60)
    assert marked.others == stack.wechat.texts(openid)[: len(marked.others)]
    async with httpx.AsyncClient() as http:
        assert (await http.get(f"{stack.url}/healthz")).status_code == 200


async def test_locks_a_dead_worker_left_hold_up_only_their_own_patients(stack: Stack) -> None:
    """A worker killed mid-turn leaves its patients' locks behind. Consumers must not sit waiting
    for them: other patients are answered at once, and the locked ones once the lock lapses."""
    stuck = [await stack.consented_patient() for _ in range(3)]  # more than a worker's consumers
    other = await stack.consented_patient()
    client = aioredis.Redis.from_url(stack.redis_url)
    try:
        for openid in stuck:  # what a dead worker leaves: a lock nobody renews, lapsing in 8 s
            await client.set(f"cb:lock:patient:{SANDBOX_APPID}:{openid}", "dead-worker", px=8000)
        before = {openid: len(stack.wechat.texts(openid)) for openid in [*stuck, other]}
        for openid in stuck:
            await stack.say(openid, "你好")
        assert await stack.converse(other, "你好")
        # Answered while the locks still hold: no consumer waited behind them (it would have
        # answered the locked patients first, once their locks lapsed).
        assert [len(stack.wechat.texts(openid)) for openid in stuck] == [before[o] for o in stuck]
        for openid in stuck:  # once the lock lapses, the sweeper's pass answers them
            await stack.wait_answers(openid, before[openid] + 1, timeout=40)
    finally:
        await client.aclose()
    for openid in stuck:
        marked = await send_marker_and_wait(stack, openid, timeout=60)
        assert len(marked.others) == before[openid] + 1


DELAYED = "智能助手暂时有点忙"


async def _attempts(db: Database, openid: str, text: str) -> int:
    async with db.sessions() as session:
        attempts = await session.scalar(
            select(InboundMessage.attempts).where(
                InboundMessage.openid == openid, InboundMessage.payload["Content"].as_string() == text
            )
        )
    return attempts or 0


@contextlib.contextmanager
def _rasa_away(stack: Stack, **overrides: str) -> Iterator[None]:
    """The stack's worker replaced by one that cannot reach Rasa, then the real one again."""
    assert stack.worker is not None
    stack.worker.stop()
    stack.start_worker(RASA_PORT=str(free_port()), **overrides)
    try:
        yield
    finally:
        stack.worker.stop()
        stack.start_worker()


async def test_while_rasa_is_away_the_patient_is_told_once_and_answered_when_it_is_back(
    stack: Stack, db: Database
) -> None:
    openid = await stack.consented_patient()
    before = len(stack.wechat.texts(openid))
    with _rasa_away(stack):
        await stack.say(openid, "你好")
        [notice] = (await stack.wait_answers(openid, before + 1))[before:]
        assert DELAYED in notice
        await stack.say(openid, "谢谢")
        # Tried again and again (reclaims, the sweeper, the patient's next message) ...
        deadline = time.monotonic() + 40
        while await _attempts(db, openid, "你好") < 4:
            assert time.monotonic() < deadline, "the push was not retried"
            await asyncio.sleep(0.2)
        # ... but told only once, and not given up on: Rasa has been away for seconds, not minutes.
        assert len(stack.wechat.texts(openid)) == before + 1
    marked = await send_marker_and_wait(stack, openid, timeout=60)
    texts = marked.others[before:]
    assert len(texts) == 3 and DELAYED in texts[0], texts  # the notice, then both answers
    assert not any("工作人员会尽快跟进" in t for t in texts)


async def test_a_message_rasa_never_answers_goes_to_staff_with_the_patient_s_words(
    stack: Stack, db: Database
) -> None:
    openid = await stack.consented_patient()
    before = len(stack.wechat.texts(openid))
    # Rasa away for longer than this worker retries a turn.
    with _rasa_away(stack, BOT_RETRY_SECONDS="3", MAX_PROCESSING_ATTEMPTS="2"):
        await stack.say(openid, "我想问一下明天的复查要不要空腹")
        texts = (await stack.wait_answers(openid, before + 3, timeout=60))[before:]
    # Told the answer is late, then that a person will follow up, and the notice of the queue.
    assert DELAYED in texts[0] and "工作人员会尽快跟进" in texts[1], texts
    async with db.sessions() as session:
        escalation = await session.scalar(
            select(Escalation)
            .join(Conversation, Escalation.conversation_id == Conversation.id)
            .join(WeChatIdentity, Conversation.identity_id == WeChatIdentity.id)
            .where(WeChatIdentity.openid == openid)
        )
        words = await session.scalar(
            select(Message.content)
            .join(Conversation, Message.conversation_id == Conversation.id)
            .join(WeChatIdentity, Conversation.identity_id == WeChatIdentity.id)
            .where(WeChatIdentity.openid == openid, Message.content.like("%空腹%"))
        )
    assert escalation is not None and (escalation.reason, escalation.priority) == ("bot_unavailable", "high")
    assert words == "我想问一下明天的复查要不要空腹"  # in the conversation staff open


@pytest.mark.parametrize(
    ("said", "answer"),
    [
        ("查一下我的预约", "没有待就诊的预约"),
        # Rasa tries one fallback action after another, all failing, until its circuit breaker
        # stops the turn without listening. Left so, Rasa counted every later message of the
        # patient into that broken turn and answered none of them.
        ("阿斯顿发个噶", "回复数字"),
    ],
)
async def test_while_the_action_server_is_away_the_turn_waits_and_is_answered_once_it_is_back(
    stack: Stack, said: str, answer: str
) -> None:
    """Rasa answers 200 without an action's messages when its action server is away: the turn is
    asked again once the action server is back, the patient gets the real answer (once), and the
    next message is answered too."""
    openid = await stack.consented_patient()
    before = len(stack.wechat.texts(openid))
    stack.rasa.actions.kill()
    try:
        await stack.say(openid, said)
        [notice] = (await stack.wait_answers(openid, before + 1))[before:]
        assert DELAYED in notice
    finally:
        await asyncio.to_thread(stack.rasa.restart_actions)
    marked = await send_marker_and_wait(stack, openid, timeout=60)
    texts = marked.others[before:]
    assert len(texts) == 2 and answer in texts[1], texts
    assert marked.answers, "the message after the outage got no answer"


async def test_answers_wechat_cannot_take_wait_and_go_out_in_order_once_it_is_back(
    stack: Stack, db: Database
) -> None:
    openid = await stack.consented_patient()
    before = len(stack.wechat.texts(openid))
    # Longer than one delivery's retries with backoff: the answers must wait, not fail.
    stack.wechat.fault(api="custom_send", http_status=503, times=10_000)
    try:
        await stack.say(openid, "你好")
        await stack.say(openid, "查一下我的预约")
        deadline = time.monotonic() + 30
        while await _pending_answers(db, openid) < 2:
            assert time.monotonic() < deadline, "the answers were not kept for later"
            await asyncio.sleep(0.2)
    finally:
        stack.wechat.clear_faults()
    marked = await send_marker_and_wait(stack, openid, db=db, timeout=60)
    texts = marked.others[before:]
    assert len(texts) == 2 and "没有待就诊的预约" in texts[1], texts


async def _pending_answers(db: Database, openid: str) -> int:
    async with db.sessions() as session:
        return len(
            (
                await session.scalars(
                    select(Message.id)
                    .join(Conversation, Message.conversation_id == Conversation.id)
                    .join(WeChatIdentity, Conversation.identity_id == WeChatIdentity.id)
                    .where(
                        WeChatIdentity.openid == openid,
                        Message.direction == Direction.OUT,
                        Message.delivery_status == DeliveryStatus.PENDING,
                    )
                )
            ).all()
        )


async def test_a_send_wechat_never_answers_is_not_sent_again(stack: Stack, db: Database) -> None:
    """WeChat may have delivered a message it did not answer for: sending it again could show it
    twice, so it is marked and left for staff to see."""
    openid = await stack.consented_patient()
    before = len(stack.wechat.texts(openid))
    stack.wechat.fault(api="custom_send", delay_seconds=12, times=1)  # longer than our client waits
    await stack.say(openid, "你好")
    message = await _wait_status(db, openid, DeliveryStatus.FAILED, timeout=30)
    assert message.delivery_error and UNCERTAIN in message.delivery_error
    marked = await send_marker_and_wait(stack, openid, db=db, timeout=60)
    assert len(marked.others) <= before + 1  # the first send, if WeChat delivered it; never twice


@pytest.mark.parametrize("stack", ["postgresql"], indirect=True)
async def test_a_push_that_arrives_while_the_database_is_away_is_held_then_stored_and_answered(
    stack: Stack,
) -> None:
    """A web process whose path to PostgreSQL is cut for a few seconds holds the push instead of
    answering WeChat with an error, and stores it once the database is back."""
    host, port = postgres_address()
    relay = Relay("postgresql", [(host, port)]).start()
    cut_off = Stack(
        "db-cut",
        stack.database_url.replace(f"{host}:{port}", f"127.0.0.1:{relay.port}"),
        stack.redis_url,
        stack.rasa,
        stack.wechat,
    )
    try:
        cut_off.start_web()
        openid = await stack.consented_patient()
        before = len(stack.wechat.texts(openid))
        relay.cut(3)
        response = await cut_off.post(cut_off.build("text", openid, content="你好"))
        assert (response.status_code, response.text) == (200, "success")
        answers = await stack.wait_answers(openid, before + 1)
        assert answers[before:]
    finally:
        cut_off.stop()
        relay.stop()
