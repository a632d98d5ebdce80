"""Nothing lost under faults: the real stack on PostgreSQL, a mixed load through the webhook, one
fault after another, then the books checked from the database and the fake WeChat API's record.

The stack runs two web processes behind a local load balancer, two workers and one or two Rasa
servers (each with its own action server); Redis and the path to PostgreSQL belong to the suite, so
the machine's shared servers are never touched. Patients chat, book and ask for a person; WeChat
retries pushes it got no answer for and sometimes repeats one it did; an agent answers the chats
staff hold. Each fault hits one of each kind of process or one outside system, in its own window.

Post-operative check-ins join the load: patients enrolled in a shipped follow-up plan (anchored in
the future, so nothing is due) have their day-1 check-in made due just as each fault is injected, so
the workers' dispatcher starts it under the fault; those patients then answer the plan's questions
in chat as pushes of the load.

Complaints join it too (fault_complaints.py): in each window a patient begins a complaint through
the chat's multi-turn intake as the window starts, so the fault lands mid-intake, and answers each
question as the bot asks it, 确认 included (again when the bot says the CRM was away).

Checked at the end, for every push WeChat got "success" for: stored once; answered exactly once,
or marked with its reason (given up and escalated, held by staff, refused by WeChat); no answer
for a push never stored; answers in the order of the pushes; every agent reply delivered once.
For every check-in made due: started exactly once (one dialogue turn under its key, its first
message at the fake WeChat API once), none lost (due but never started, or its dialogue dropped
without a reason the books accept), each answer stored once. For every complaint the patient
confirmed: registered exactly once (one case, and the number the patient read is that case's).

    .venv/bin/python bench/faults.py            # the full suite (about 10 minutes)
    .venv/bin/python bench/faults.py --short    # the version `make test` runs
    .venv/bin/python bench/faults.py --faults redis_data_loss,web_kill --rasa 1

Exits 1 when anything was lost or sent twice.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import random
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.fault_complaints import COUNTS as COMPLAINT_COUNTS
from bench.fault_complaints import ComplaintTally, Intake, check_complaints, file_complaint
from bench.fault_rig import OwnRedis, Relay, postgres_address
from bench.webhook_latency import default_timings
from channels.outbound.delivery import TEMPLATE_KEY, UNCERTAIN
from crm_backend.config import HOSPITAL_TZ
from crm_backend.database.core import Database
from crm_backend.followups.dispatch import checkin_id_of_key
from crm_backend.followups.plan_service import ensure_shipped_plans
from tests.support.console import ConsoleClient
from tests.support.postgres import drop_postgres, recreate_postgres
from tests.support.settle import wait_turn_settled
from tests.support.stack import (
    ADMIN_PASSWORD,
    ADMIN_USERNAME,
    FakeWeChat,
    RasaServers,
    Stack,
    free_port,
    new_openid,
    start_fake_wechat,
    start_rasa,
    wait_until,
)

CHAT = ["你好", "谢谢", "我的预约", "在吗", "早上好", "好的谢谢"]
BOOKING = ["我想挂号", "皮肤科", "明天上午", "算了不约了"]
TO_STAFF = ["医生在吗", "我想问问复查的事", "伤口有点痒正常吗", "好的"]
#: WeChat repeats a push it did get our "success" for about this often (a lost acknowledgement).
REPEAT_SHARE = 0.1
#: WeChat waits this long for our answer to a push, and tries this many times in all.
WECHAT_PUSH_TIMEOUT = 5.0
WECHAT_PUSH_TRIES = 3
#: The shipped plan the check-in patients are enrolled in (its day-1 check-in is made due).
CHECKIN_PLAN = "lap_cholecystectomy"
CHECKIN_PROCEDURE = "腹腔镜胆囊切除术"
FOLLOWUP_TEMPLATE = "tmpl-faults-followup-checkin"
#: A check-in patient writes this many answers, then falls silent (the day-1 questionnaire has seven
#: questions: enough for most to finish, while the load stays near the ordinary patients').
CHECKIN_ANSWERS = 8
#: A dead worker's claim is taken over this soon (the product's default is a minute).
CLAIM_TIMEOUT_SECONDS = 5


def checkin_answer(asked: str) -> str:
    """What a patient who is doing well answers to the plan's question they read last."""
    if "体温" in asked:
        return "三十六度八"
    if "打个分" in asked or "0 分" in asked:
        return "有点疼，大概3分"
    if "排气" in asked or "放屁" in asked:
        return "1"
    return "没有"


@dataclass
class SentPush:
    openid: str
    msg_id: int
    text: str
    window: str
    sent_at: float
    acked: bool = False


@dataclass
class AgentReply:
    openid: str
    text: str
    window: str
    accepted: bool


@dataclass
class DueCheckin:
    """A check-in made due in a fault window, and the patient who answers it."""

    checkin_id: int
    openid: str
    window: str


@dataclass
class Window:
    name: str
    started: float
    ended: float = 0.0


@dataclass
class Books:
    """What the load generator did, for the checks."""

    pushes: list[SentPush] = field(default_factory=list)
    replies: list[AgentReply] = field(default_factory=list)
    windows: list[Window] = field(default_factory=list)
    to_staff: set[str] = field(default_factory=set)
    #: Enrolled patients whose day-1 check-in is not due yet: (openid, check-in id).
    checkin_pool: list[tuple[str, int]] = field(default_factory=list)
    checkins: list[DueCheckin] = field(default_factory=list)
    #: Patients who have not filed their complaint yet, and the intakes filed in each window.
    complaint_pool: list[str] = field(default_factory=list)
    complaints: list[Intake] = field(default_factory=list)

    @property
    def window(self) -> str:
        return self.windows[-1].name if self.windows else "setup"


@dataclass
class Timing:
    """How long each fault lasts; the short version's are shorter."""

    lead: float
    tail: float
    rasa_down: float
    actions_down: float
    postgres_down: float
    wechat_fault: float
    restart_after: float


FULL = Timing(
    lead=5, tail=15, rasa_down=60, actions_down=30, postgres_down=20, wechat_fault=15, restart_after=5
)
SHORT = Timing(lead=3, tail=6, rasa_down=10, actions_down=8, postgres_down=8, wechat_fault=6, restart_after=3)


class Rig:
    """The stack and the handles the faults pull."""

    def __init__(self, rasa_servers: int, short: bool) -> None:
        self.rasa_count = rasa_servers
        self.short = short
        self.redis = OwnRedis()
        self.db_relay = Relay("postgresql", [postgres_address()])
        self.web_ports = [free_port(), free_port()]
        self.web_relay = Relay("web", [("127.0.0.1", port) for port in self.web_ports])
        self.rasa: list[RasaServers] = []
        self.stacks: list[Stack] = []
        self.wechat: FakeWeChat | None = None
        self.database_name = os.environ.get("TEST_POSTGRES_DB", "carebridge_test") + "_faults"
        self.direct_dsn = ""
        self.direct_url = ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.web_relay.port}"

    @property
    def fake(self) -> FakeWeChat:
        assert self.wechat is not None
        return self.wechat

    async def start(self) -> None:
        self.redis.start()
        self.db_relay.start()
        self.web_relay.start()
        direct_url = self.direct_url = await recreate_postgres(self.database_name)
        self.direct_dsn = direct_url.replace("postgresql+asyncpg", "postgresql")
        host, port = postgres_address()
        relayed_url = direct_url.replace(f"{host}:{port}", f"127.0.0.1:{self.db_relay.port}")
        if f"{host}:{port}" not in direct_url:
            raise SystemExit(f"cannot route {direct_url} through the relay")
        self.wechat = start_fake_wechat()
        self.rasa = list(
            await asyncio.gather(
                *(
                    asyncio.to_thread(start_rasa, self.redis.url(1), self.url, label=f"-faults-{i}")
                    for i in range(self.rasa_count)
                )
            )
        )
        settings = {
            "RASA_URLS": ",".join(f"http://127.0.0.1:{r.rasa_port}" for r in self.rasa),
            "ACTION_SERVER_URLS": ",".join(f"http://127.0.0.1:{r.action_port}" for r in self.rasa),
            # The full suite runs the product's own timings; the short one the test suite's.
            **({} if self.short else default_timings()),
            # Check-ins start within a second of being due, at any hour the suite runs.
            "FOLLOWUP_INTERVAL_SECONDS": "1",
            "FOLLOWUP_SEND_FROM": "00:00",
            "FOLLOWUP_SEND_UNTIL": "23:59",
            "FOLLOWUP_TEMPLATE_ID": FOLLOWUP_TEMPLATE,
            "FOLLOWUP_CLAIM_TIMEOUT_SECONDS": str(CLAIM_TIMEOUT_SECONDS),
        }
        self.stacks = [
            Stack(f"faults-{i}", relayed_url, self.redis.url(0), self.rasa[0], self.fake, port, settings)
            for i, port in enumerate(self.web_ports)
        ]
        self.stacks[0].migrate()
        database = Database(self.direct_url)
        try:
            async with database.sessions() as session:
                await ensure_shipped_plans(session)
                await session.commit()
        finally:
            await database.dispose()
        for stack in self.stacks:
            stack.start_web()
            stack.start_worker()
        for stack in self.stacks:
            stack.wait_healthy(120)

    def stop(self) -> None:
        for stack in self.stacks:
            stack.stop()
        for servers in self.rasa:
            servers.stop()
        if self.wechat is not None:
            self.wechat.process.stop()
        self.web_relay.stop()
        self.db_relay.stop()
        self.redis.stop()

    async def restart_rasa(self, index: int) -> None:
        servers = self.rasa[index]
        servers.rasa.start()
        await asyncio.to_thread(
            wait_until,
            lambda: bool(
                httpx.get(f"http://127.0.0.1:{servers.rasa_port}/status", timeout=2).json()["model_file"]
            ),
            300,
            "Rasa to load its model again",
            1,
        )

    async def restart_actions(self, index: int) -> None:
        servers = self.rasa[index]
        servers.actions.start()
        await asyncio.to_thread(
            wait_until,
            lambda: httpx.get(f"http://127.0.0.1:{servers.action_port}/health", timeout=2).status_code == 200,
            120,
            "the action server again",
            0.5,
        )

    async def turns_in_flight(self, at_least: int, timeout: float = 10) -> bool:
        """Wait until `at_least` patient locks are held (0: until none is), so a kill lands in the
        middle of a turn or between turns."""
        deadline = time.monotonic() + timeout
        pattern = "cb:lock:patient:*"
        while time.monotonic() < deadline:
            held = await asyncio.to_thread(self.redis.locks_held, pattern)
            if (held >= at_least) if at_least else held == 0:
                return True
            await asyncio.sleep(0.005)
        return False


# -- the faults --------------------------------------------------------------------------------------

Inject = Callable[[Rig, Timing], Awaitable[None]]


async def _none(rig: Rig, timing: Timing) -> None:
    await asyncio.sleep(timing.wechat_fault)


async def _redis_data_loss(rig: Rig, timing: Timing) -> None:
    await asyncio.to_thread(rig.redis.lose_data)


async def _redis_restart(rig: Rig, timing: Timing) -> None:
    rig.redis.process.kill()
    await asyncio.sleep(timing.restart_after)
    await asyncio.to_thread(rig.redis.start)


async def _worker_kill(rig: Rig, timing: Timing, *, mid_turn: bool) -> None:
    await rig.turns_in_flight(2 if mid_turn else 0)
    worker = rig.stacks[0].worker
    assert worker is not None
    worker.kill()
    await asyncio.sleep(timing.restart_after)
    rig.stacks[0].start_worker()


async def _worker_kill_between(rig: Rig, timing: Timing) -> None:
    await _worker_kill(rig, timing, mid_turn=False)


async def _worker_kill_mid_turn(rig: Rig, timing: Timing) -> None:
    await _worker_kill(rig, timing, mid_turn=True)


async def _worker_kill_mid_dispatch(rig: Rig, timing: Timing) -> None:
    """Both workers SIGKILLed the moment one of them holds a check-in claim (a start under way),
    so the claim belongs to a dead worker and must be taken over."""
    conn = await asyncpg.connect(rig.direct_dsn)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if await conn.fetchval("SELECT count(*) FROM followup_checkins WHERE status = 'claimed'"):
                break
            await asyncio.sleep(0.002)
    finally:
        await conn.close()
    for stack in rig.stacks:
        assert stack.worker is not None
        stack.worker.kill()
    await asyncio.sleep(timing.restart_after)
    for stack in rig.stacks:
        stack.start_worker()


async def _web_kill(rig: Rig, timing: Timing) -> None:
    web = rig.stacks[0].web
    assert web is not None
    web.kill()
    await asyncio.sleep(timing.restart_after)
    await asyncio.to_thread(rig.stacks[0].start_web)


async def _rasa_down(rig: Rig, timing: Timing) -> None:
    rig.rasa[0].rasa.kill()
    await asyncio.sleep(timing.rasa_down)
    await rig.restart_rasa(0)


async def _action_server_down(rig: Rig, timing: Timing) -> None:
    rig.rasa[0].actions.kill()
    await asyncio.sleep(timing.actions_down)
    await rig.restart_actions(0)


async def _wechat(rig: Rig, timing: Timing, **spec: Any) -> None:
    await asyncio.to_thread(rig.fake.fault, api="custom_send", times=10_000, **spec)
    await asyncio.sleep(timing.wechat_fault)
    await asyncio.to_thread(rig.fake.clear_faults)


async def _wechat_5xx(rig: Rig, timing: Timing) -> None:
    await _wechat(rig, timing, http_status=503)


async def _wechat_timeout(rig: Rig, timing: Timing) -> None:
    # Longer than our client waits for WeChat: the send may or may not have gone out.
    await _wechat(rig, timing, delay_seconds=12)


async def _wechat_45015(rig: Rig, timing: Timing) -> None:
    await _wechat(rig, timing, errcode=45015, errmsg="response out of time limit or subscription is canceled")


async def _token_expiry(rig: Rig, timing: Timing) -> None:
    await asyncio.to_thread(rig.fake.expire_tokens)


async def _postgres_down(rig: Rig, timing: Timing) -> None:
    rig.db_relay.cut(timing.postgres_down)
    await asyncio.sleep(timing.postgres_down)


FAULTS: dict[str, Inject] = {
    "none": _none,
    "redis_data_loss": _redis_data_loss,
    "redis_restart": _redis_restart,
    "worker_kill_between_turns": _worker_kill_between,
    "worker_kill_mid_turn": _worker_kill_mid_turn,
    "worker_kill_mid_dispatch": _worker_kill_mid_dispatch,
    "web_kill": _web_kill,
    "rasa_down": _rasa_down,
    "action_server_down": _action_server_down,
    "wechat_5xx": _wechat_5xx,
    "wechat_timeout": _wechat_timeout,
    "wechat_45015": _wechat_45015,
    "token_expiry": _token_expiry,
    "postgres_down": _postgres_down,
}
SHORT_FAULTS = [
    "none",
    "redis_data_loss",
    "worker_kill_mid_turn",
    "worker_kill_mid_dispatch",
    "web_kill",
    "action_server_down",
    "wechat_5xx",
    "wechat_timeout",
    "token_expiry",
    "postgres_down",
]


# -- acting as WeChat, patients and an agent ------------------------------------------------------


class Load:
    def __init__(self, rig: Rig, books: Books, rng: random.Random, gap: float) -> None:
        self.rig = rig
        self.books = books
        self.rng = rng
        self.gap = gap
        self.http = httpx.AsyncClient(timeout=WECHAT_PUSH_TIMEOUT)
        self.stopping = asyncio.Event()

    async def push(self, openid: str, text: str) -> SentPush:
        """One push as WeChat sends it: tried up to three times until we answer "success"."""
        built = self.rig.stacks[0].build("text", openid, content=text)
        assert built.msg_id is not None
        sent = SentPush(openid, built.msg_id, text, self.books.window, time.time())
        self.books.pushes.append(sent)
        for _ in range(WECHAT_PUSH_TRIES):
            if await self._post(built):
                sent.acked = True
                break
            await asyncio.sleep(1)
        if sent.acked and self.rng.random() < REPEAT_SHARE:
            # Our "success" got lost on the way: WeChat sends the same push again.
            await asyncio.sleep(self.rng.uniform(0.2, 2))
            await self._post(built)
        return sent

    async def _post(self, built: Any) -> bool:
        try:
            response = await self.http.post(
                f"{self.rig.url}/wechat/oa", params=built.params, content=built.body, headers=built.headers
            )
        except httpx.HTTPError:
            return False
        return response.status_code == 200 and response.text == "success"

    async def patient(self, openid: str, script: list[str]) -> None:
        step = 0
        while not self.stopping.is_set():
            await self._pause()
            if self.stopping.is_set():
                return
            await self.push(openid, script[step % len(script)])
            step += 1

    async def checkin_patient(self, openid: str, due: asyncio.Event) -> None:
        """Silent until their check-in is due; then answers what the bot asked last, as pushes,
        until they have written CHECKIN_ANSWERS of them."""
        stopping = asyncio.create_task(self.stopping.wait())
        made_due = asyncio.create_task(due.wait())
        await asyncio.wait({stopping, made_due}, return_when=asyncio.FIRST_COMPLETED)
        for waiting in (stopping, made_due):
            waiting.cancel()
        answered = 0
        while not self.stopping.is_set() and answered < CHECKIN_ANSWERS:
            await self._pause()
            if self.stopping.is_set():
                return
            received = await asyncio.to_thread(self.rig.fake.texts, openid)
            if received:  # nothing yet: the check-in has not reached them
                await self.push(openid, checkin_answer(received[-1]))
                answered += 1

    async def complaint_patient(self, intake: Intake, start: asyncio.Event) -> None:
        """Files one complaint through the chat's intake once their window starts (fault_complaints.py);
        they think for half the ordinary gap, so the intake spans the fault."""

        async def texts(openid: str) -> list[str]:
            return await asyncio.to_thread(self.rig.fake.texts, openid)

        await file_complaint(
            intake, self.push, texts, start, self.stopping, lambda: self.rng.expovariate(2 / self.gap)
        )

    async def agent(self, console: ConsoleClient, conversations: dict[str, int]) -> None:
        """An agent answering each chat staff hold every few seconds."""
        count = 0
        while not self.stopping.is_set():
            await self._pause()
            for openid, conversation_id in conversations.items():
                count += 1
                text = f"您好，这里是护士站，第 {count} 次回复。"
                try:
                    response = await console.post(
                        f"/api/console/conversations/{conversation_id}/messages", {"text": text}
                    )
                    accepted = response.status_code == 201
                    if response.status_code == 401:
                        # Signed out (sessions live in Redis): the agent signs in again.
                        await console.login(ADMIN_USERNAME, ADMIN_PASSWORD)
                except httpx.HTTPError:
                    accepted = False
                self.books.replies.append(AgentReply(openid, text, self.books.window, accepted))

    async def _pause(self) -> None:
        with_jitter = self.rng.expovariate(1 / self.gap)
        try:
            await asyncio.wait_for(self.stopping.wait(), with_jitter)
        except TimeoutError:
            pass


async def consented(rig: Rig) -> str:
    openid = new_openid()
    stack = rig.stacks[0]
    assert (await stack.post(stack.build("subscribe", openid))).text == "success"
    await stack.wait_answers(openid, 2, timeout=60)
    await stack.converse(openid, "同意", timeout=60)
    return openid


async def hand_to_staff(rig: Rig, openid: str, console: ConsoleClient) -> int:
    """The patient asks for a person and the agent takes the chat; returns the conversation id."""
    await rig.stacks[0].converse(openid, "转人工", timeout=60)
    conn = await asyncpg.connect(rig.direct_dsn)
    try:
        found = await conn.fetchrow(
            "SELECT x.id, x.conversation_id FROM escalations x"
            + OF_PATIENT
            + "WHERE w.openid = $1 AND x.resolved_at IS NULL",
            openid,
        )
    finally:
        await conn.close()
    if found is None:
        raise RuntimeError(f"{openid} asked for a person but no escalation exists")
    (await console.post(f"/api/console/escalations/{found['id']}/claim")).raise_for_status()
    return int(found["conversation_id"])


async def enrol_for_checkins(rig: Rig, console: ConsoleClient, openids: list[str]) -> list[tuple[str, int]]:
    """Each patient enrolled in the shipped plan through the console, discharged a month from now
    (nothing due yet); returns each one's day-1 check-in."""
    team = await console.post("/api/console/admin/teams", {"name": f"随访组 {new_openid()[-6:]}"})
    team.raise_for_status()
    anchor = (datetime.now(HOSPITAL_TZ) + timedelta(days=30)).date().isoformat()
    conn = await asyncpg.connect(rig.direct_dsn)
    try:
        patient_of = dict(
            await conn.fetch(
                "SELECT openid, patient_id FROM wechat_identities WHERE openid = ANY($1::text[])", openids
            )
        )
    finally:
        await conn.close()
    enrolled = []
    for openid in openids:
        response = await console.post(
            "/api/console/followups/enrolments",
            {
                "patient_id": patient_of[openid],
                "plan_code": CHECKIN_PLAN,
                "anchor_date": anchor,
                "team_id": team.json()["id"],
                "procedure": CHECKIN_PROCEDURE,
            },
        )
        if response.status_code != 201:
            raise RuntimeError(f"enrolling {openid}: {response.status_code} {response.text}")
        first = min(response.json()["checkins"], key=lambda c: c["day"])
        enrolled.append((openid, int(first["id"])))
    return enrolled


async def make_due(rig: Rig, books: Books, events: dict[str, asyncio.Event], count: int) -> None:
    """A few check-ins due now, as the fault is injected: the dispatcher starts them under it."""
    chosen, books.checkin_pool = books.checkin_pool[:count], books.checkin_pool[count:]
    if not chosen:
        return
    conn = await asyncpg.connect(rig.direct_dsn)
    try:
        await conn.execute(
            "UPDATE followup_checkins SET due_at = $2 WHERE id = ANY($1::int[])",
            [checkin_id for _, checkin_id in chosen],
            datetime.now(UTC),
        )
    finally:
        await conn.close()
    for openid, checkin_id in chosen:
        books.checkins.append(DueCheckin(checkin_id, openid, books.window))
        events[openid].set()


def start_complaints(
    books: Books, intakes: dict[str, Intake], events: dict[str, asyncio.Event], count: int
) -> None:
    """A few patients begin their complaint as the window starts: the fault lands mid-intake."""
    chosen, books.complaint_pool = books.complaint_pool[:count], books.complaint_pool[count:]
    for openid in chosen:
        intakes[openid].window = books.window
        books.complaints.append(intakes[openid])
        events[openid].set()


#: Joins the row `x` of a conversation to the patient's WeChat identity `w`.
OF_PATIENT = (
    " JOIN conversations c ON c.id = x.conversation_id JOIN wechat_identities w ON w.id = c.identity_id "
)


# -- the books -------------------------------------------------------------------------------------


@dataclass
class Row:
    fault: str
    pushes: int = 0
    answered: int = 0
    marked: Counter[str] = field(default_factory=Counter)
    lost: int = 0
    duplicated: int = 0
    longest: float = 0.0
    problems: list[str] = field(default_factory=list)
    checkins_due: int = 0
    checkins_started: int = 0
    checkins_lost: int = 0
    checkins_duplicated: int = 0
    #: Of the check-ins started, those whose claim a dead worker left and another took over.
    checkins_taken_over: int = 0
    #: Check-ins with at least one answer stored, and their answers.
    checkins_answered: int = 0
    answers: int = 0
    complaints: ComplaintTally = field(default_factory=ComplaintTally)

    @property
    def failed(self) -> bool:
        return bool(
            self.lost
            or self.duplicated
            or self.checkins_lost
            or self.checkins_duplicated
            or self.complaints.failed
        )


async def check(rig: Rig, books: Books) -> list[Row]:
    openids = sorted({p.openid for p in books.pushes} | {c.openid for c in books.checkins})
    conn = await asyncpg.connect(rig.direct_dsn)
    try:
        inbound = await conn.fetch(
            "SELECT id, openid, wechat_msg_id, status, last_error, processed_at, create_time, received_at "
            "FROM inbound_messages "
            "WHERE openid = ANY($1::text[]) AND msg_type = 'text'",
            openids,
        )
        outbound = await conn.fetch(
            "SELECT x.id, w.openid, x.conversation_id, x.sender_type, x.msg_type, x.content, x.extra, "
            "x.reply_to_inbound_id, x.delivery_status, x.delivery_error FROM messages x"
            + OF_PATIENT
            + "WHERE w.openid = ANY($1::text[]) AND x.direction = 'out' ORDER BY x.id",
            openids,
        )
        escalations = await conn.fetch(
            "SELECT x.reason, x.created_at, x.resolved_at, w.openid FROM escalations x"
            + OF_PATIENT
            + "WHERE w.openid = ANY($1::text[])",
            openids,
        )
        checkin_ids = [c.checkin_id for c in books.checkins]
        dialogue_turns = await conn.fetch(
            "SELECT id, dedupe_key, openid, status, last_error FROM inbound_messages "
            "WHERE openid = ANY($1::text[]) AND dedupe_key LIKE 'dialogue:followup:checkin:%'",
            openids,
        )
        checkin_rows = await conn.fetch(
            "SELECT id, status, claims, reason FROM followup_checkins WHERE id = ANY($1::int[])",
            checkin_ids,
        )
        answer_rows = await conn.fetch(
            "SELECT checkin_id, question, count(*) AS copies FROM followup_answers "
            "WHERE checkin_id = ANY($1::int[]) GROUP BY checkin_id, question",
            checkin_ids,
        )
        case_rows = await conn.fetch(
            "SELECT x.case_number, w.openid FROM complaints x "
            "JOIN wechat_identities w ON w.id = x.identity_id WHERE w.openid = ANY($1::text[])",
            [intake.openid for intake in books.complaints],
        )
    finally:
        await conn.close()
    sends = [s for s in await asyncio.to_thread(rig.fake.sent) if s["touser"] in set(openids)]

    rows = {w.name: Row(w.name) for w in books.windows}
    stored: dict[tuple[str, int], list[asyncpg.Record]] = defaultdict(list)
    for record in inbound:
        stored[(record["openid"], record["wechat_msg_id"])].append(record)
    answers: dict[int, list[asyncpg.Record]] = defaultdict(list)
    for message in outbound:
        if message["reply_to_inbound_id"] is not None:
            answers[message["reply_to_inbound_id"]].append(message)
    arrivals = _match_sends(outbound, sends)
    window_of_inbound: dict[int, str] = {}

    for push in books.pushes:
        row = rows[push.window]
        records = stored.get((push.openid, push.msg_id), [])
        if not push.acked:
            if records:
                row.pushes += 1  # WeChat gave up but a try did land: it must be answered like any other
            else:
                row.marked["not acknowledged: WeChat told the patient"] += 1
                continue
        else:
            row.pushes += 1
        if not records:
            row.lost += 1
            row.problems.append(f"push {push.msg_id} of {push.openid} acknowledged but not stored")
            continue
        if len(records) > 1:
            row.duplicated += len(records) - 1
            row.problems.append(f"push {push.msg_id} stored {len(records)} times")
        record = records[0]
        window_of_inbound[record["id"]] = push.window
        replies = answers.get(record["id"], [])
        if record["status"] == "failed":
            if any(e["openid"] == push.openid and e["reason"] == "bot_unavailable" for e in escalations):
                row.marked["given up, escalated to staff"] += 1
            else:
                row.lost += 1
                row.problems.append(f"push {push.msg_id} given up without an escalation")
            continue
        if record["status"] != "processed":
            row.lost += 1
            row.problems.append(f"push {push.msg_id} still {record['status']} at the end")
            continue
        if not replies:
            if _held_by_staff(escalations, push.openid, record["processed_at"]):
                row.marked["for staff"] += 1
            else:
                row.lost += 1
                row.problems.append(f"push {push.msg_id} ({push.text}) processed without an answer")
            continue
        statuses = {m["delivery_status"] for m in replies}
        if statuses == {"sent"}:
            row.answered += 1
            firsts = [arrivals[m["id"]][0] for m in replies if arrivals.get(m["id"])]
            if firsts:  # one that never arrived is counted below, with the sends
                row.longest = max(row.longest, min(firsts) - push.sent_at)
        elif statuses & {"pending", "sending"}:
            row.lost += 1
            row.problems.append(f"push {push.msg_id}: answer still {statuses} at the end")
        else:
            reasons = {_reason(m) for m in replies if m["delivery_status"] != "sent"}
            row.marked["answer not delivered: " + ", ".join(sorted(reasons))] += 1

    # Every send WeChat recorded is a stored message sent once, in the order of the pushes answered.
    for message in outbound:
        times = arrivals.get(message["id"], [])
        window = window_of_inbound.get(message["reply_to_inbound_id"] or -1) or _window_at(books, times)
        row = rows.get(window) or rows[books.windows[0].name]
        allowed = 1 if _may_have_arrived(message) else 0
        if len(times) > allowed:
            row.duplicated += len(times) - allowed
            row.problems.append(
                f"message {message['id']} ({message['content'][:20]}) arrived {len(times)} times"
            )
        if message["delivery_status"] == "sent" and not times:
            row.lost += 1
            row.problems.append(
                f"{message['sender_type']} message {message['id']} ({message['content'][:20]}) "
                "marked sent but never arrived"
            )
    unmatched = [s for s in sends if s.get("_matched") is None]
    for send in unmatched:
        rows[books.windows[-1].name].duplicated += 1
        rows[books.windows[-1].name].problems.append(f"a send nobody stored: {send.get('content')!r}")
    # Answers go out in the order the patient wrote (WeChat's CreateTime, then arrival), except
    # for a message that reached us only after the answer to a later one had gone out. A send
    # WeChat gave no answer to may have arrived at any time, or not at all: it has no place here.
    pushes = {record["id"]: record for record in inbound}
    for openid in openids:
        answered = [
            (datetime.fromisoformat(s["at"]).timestamp(), pushes[m["reply_to_inbound_id"]], m)
            for s in sorted(sends, key=lambda s: s["seq"])
            if s["touser"] == openid
            and (m := s.get("_matched")) is not None
            and m["reply_to_inbound_id"] in pushes
            and m["delivery_status"] == "sent"
        ]
        for (went_out, first, earlier), (_, second, later) in itertools.pairwise(answered):
            wrote_before = (second["create_time"], second["id"]) < (first["create_time"], first["id"])
            if wrote_before and second["received_at"].timestamp() < went_out:
                row = rows[window_of_inbound.get(second["id"], books.windows[-1].name)]
                row.lost += 1
                row.problems.append(
                    f"answer {later['id']} to push {second['id']} arrived after answer {earlier['id']} "
                    f"to push {first['id']}, which the patient wrote later"
                )

    # An agent reply the console accepted is stored; its sends are checked with every message above.
    stored_replies = {(m["openid"], m["content"]) for m in outbound if m["sender_type"] == "agent"}
    for reply in books.replies:
        if not reply.accepted:
            rows[reply.window].marked["agent reply refused in the console"] += 1
        elif (reply.openid, reply.text) not in stored_replies:
            rows[reply.window].lost += 1
            rows[reply.window].problems.append(f"agent reply {reply.text!r} accepted but not stored")
    for openid in books.to_staff:
        if not any(e["openid"] == openid for e in escalations):
            rows[books.windows[0].name].lost += 1
            rows[books.windows[0].name].problems.append(f"{openid} asked for a person: no escalation")
    _check_checkins(
        books, rows, CheckinRecords(checkin_rows, dialogue_turns, answer_rows), answers, arrivals, escalations
    )

    def push_record(openid: str, msg_id: int) -> asyncpg.Record | None:
        return (stored.get((openid, msg_id)) or [None])[0]

    def given_up(openid: str, msg_id: int) -> bool:
        record = push_record(openid, msg_id)
        return (
            record is not None
            and record["status"] == "failed"
            and any(e["openid"] == openid and e["reason"] == "bot_unavailable" for e in escalations)
        )

    def held(openid: str, msg_id: int) -> bool:
        record = push_record(openid, msg_id)
        return record is not None and _held_by_staff(escalations, openid, record["processed_at"])

    delivered: dict[str, list[str]] = defaultdict(list)
    for send in sorted(sends, key=lambda s: s["seq"]):
        delivered[send["touser"]].append(send.get("content") or "")
    tallies = check_complaints(books.complaints, [dict(r) for r in case_rows], delivered, given_up, held)
    for window, tally in tallies.items():
        rows[window].complaints = tally
        rows[window].problems += tally.problems
    return list(rows.values())


@dataclass
class CheckinRecords:
    """What the database holds about the check-ins made due."""

    checkins: list[asyncpg.Record]
    dialogue_turns: list[asyncpg.Record]
    answers: list[asyncpg.Record]


def _check_checkins(
    books: Books,
    rows: dict[str, Row],
    records: CheckinRecords,
    replies_to: dict[int, list[asyncpg.Record]],
    arrivals: dict[int, list[float]],
    escalations: list[asyncpg.Record],
) -> None:
    """Each check-in made due: started once (one dialogue turn under its first key, its first
    message at WeChat at most once), not lost (never started, or its dialogue dropped without an
    accepted reason), its answers stored once."""
    checkins = {r["id"]: r for r in records.checkins}
    turns: dict[int, list[asyncpg.Record]] = defaultdict(list)
    for turn in records.dialogue_turns:
        checkin_id = checkin_id_of_key(turn["dedupe_key"])
        if checkin_id is not None and turn["dedupe_key"] == f"dialogue:followup:checkin:{checkin_id}":
            turns[checkin_id].append(turn)  # a start again after 稍后再说 has a key of its own
    answered: dict[int, list[asyncpg.Record]] = defaultdict(list)
    for answer in records.answers:
        answered[answer["checkin_id"]].append(answer)
    for due in books.checkins:
        row = rows[due.window]
        row.checkins_due += 1
        checkin = checkins[due.checkin_id]
        started = turns.get(due.checkin_id, [])
        stored = answered.get(due.checkin_id, [])
        if stored:
            row.checkins_answered += 1
            row.answers += len(stored)
        for answer in stored:
            if answer["copies"] > 1:
                row.checkins_duplicated += 1
                row.problems.append(
                    f"check-in {due.checkin_id}: answer to {answer['question']} "
                    f"stored {answer['copies']} times"
                )
        if len(started) > 1:
            row.checkins_duplicated += len(started) - 1
            row.problems.append(f"check-in {due.checkin_id} started {len(started)} times")
        if not started or checkin["status"] not in ("started", "answered"):
            row.checkins_lost += 1
            row.problems.append(
                f"check-in {due.checkin_id} made due, not started: {checkin['status']} "
                f"(claims {checkin['claims']}, {checkin['reason'] or 'no reason'}, "
                f"{len(started)} dialogue turns)"
            )
            continue
        row.checkins_taken_over += checkin["claims"] > 1
        turn = started[0]
        if turn["status"] == "failed":
            if any(e["openid"] == due.openid and e["reason"] == "bot_unavailable" for e in escalations):
                row.checkins_started += 1
                row.marked["check-in dialogue given up, escalated to staff"] += 1
            else:
                row.checkins_lost += 1
                row.problems.append(
                    f"check-in {due.checkin_id}: dialogue dropped without an escalation "
                    f"({turn['last_error']})"
                )
            continue
        if turn["status"] == "received" and _held_by_staff(escalations, due.openid, datetime.now(UTC)):
            # The patient's chat went to staff before the check-in started (the bot did not
            # understand them twice): a busy conversation makes the check-in wait, as it should.
            row.marked["check-in waiting: staff hold the chat"] += 1
            continue
        if turn["status"] != "processed":
            row.checkins_lost += 1
            row.problems.append(f"check-in {due.checkin_id}: dialogue still {turn['status']} at the end")
            continue
        said = replies_to.get(turn["id"], [])
        if not said:
            row.checkins_lost += 1
            row.problems.append(f"check-in {due.checkin_id}: dialogue processed, nothing said")
            continue
        row.checkins_started += 1
        for message in said:
            times = len(arrivals.get(message["id"], []))
            if times > 1:
                row.checkins_duplicated += 1
                row.problems.append(
                    f"check-in {due.checkin_id}: message {message['id']} ({message['content'][:20]}) "
                    f"arrived {times} times"
                )
        if not any(arrivals.get(m["id"]) for m in said):
            reasons = {_reason(m) for m in said if m["delivery_status"] != "sent"}
            row.marked["check-in not delivered: " + (", ".join(sorted(reasons)) or "?")] += 1


def _match_sends(outbound: list[asyncpg.Record], sends: list[dict[str, Any]]) -> dict[int, list[float]]:
    """Arrival times of each stored message at the fake WeChat API, matched by patient and content
    in order; each matched send is tagged with its message."""
    waiting: dict[tuple[str, str], list[asyncpg.Record]] = defaultdict(list)
    for message in outbound:
        if message["msg_type"] in ("text", "template") and _may_have_arrived(message):
            waiting[(message["openid"], _stored_as(message))].append(message)
    arrivals: dict[int, list[float]] = defaultdict(list)
    for send in sorted(sends, key=lambda s: s["seq"]):
        candidates = waiting.get((send["touser"], _sent_as(send)), [])
        if not candidates:
            continue
        # The first stored copy not yet seen, one known sent before one that may have been; once
        # all were seen, a repeat is the last one again.
        unseen = [m for m in candidates if m["id"] not in arrivals]
        unseen.sort(key=lambda m: (m["delivery_status"] != "sent", m["id"]))
        message = unseen[0] if unseen else candidates[-1]
        arrivals[message["id"]].append(datetime.fromisoformat(send["at"]).timestamp())
        send["_matched"] = message
    return arrivals


def _stored_as(message: asyncpg.Record) -> str:
    """What WeChat records of a stored message: its text, or a template message's link (unique per
    check-in invitation and reminder)."""
    if message["msg_type"] != "template":
        return str(message["content"])
    extra = json.loads(message["extra"]) if isinstance(message["extra"], str) else message["extra"] or {}
    return "template " + str((extra.get(TEMPLATE_KEY) or {}).get("url"))


def _sent_as(send: dict[str, Any]) -> str:
    return (
        "template " + str(send.get("url"))
        if send.get("api") == "template_send"
        else send.get("content") or ""
    )


def _reason(message: asyncpg.Record) -> str:
    error = message["delivery_error"] or message["delivery_status"]
    return "no answer from WeChat, not sent again" if UNCERTAIN in error else error.split(":")[0]


def _may_have_arrived(message: asyncpg.Record) -> bool:
    """Sent, or sent with no answer from WeChat (it is then never sent again)."""
    return message["delivery_status"] == "sent" or UNCERTAIN in (message["delivery_error"] or "")


def _held_by_staff(escalations: list[asyncpg.Record], openid: str, at: datetime | None) -> bool:
    return at is not None and any(
        e["openid"] == openid
        and e["created_at"] <= at
        and (e["resolved_at"] is None or e["resolved_at"] >= at)
        for e in escalations
    )


def _window_at(books: Books, times: list[float]) -> str:
    when = times[0] if times else time.time()
    for window in reversed(books.windows):
        if window.started <= when:
            return window.name
    return books.windows[0].name


# -- the run --------------------------------------------------------------------------------------


async def settle(rig: Rig, books: Books, load: Load, timeout: float) -> None:
    """Wait until every push is handled and nothing is on its way: each patient sends one more
    message, and once it is processed with its answers out, so is everything before it (a
    patient's turns are handled in order); those messages are checked like the others."""
    books.windows.append(Window("after the faults", time.time()))
    await checkins_out_of_claims(rig, books, timeout)
    patients = sorted({p.openid for p in books.pushes} | {c.openid for c in books.checkins})
    markers = await asyncio.gather(*(load.push(openid, "谢谢") for openid in patients))
    database = Database(rig.stacks[0].database_url)
    try:
        await asyncio.gather(
            *(
                wait_turn_settled(rig.stacks[0], m.openid, m.msg_id, db=database, timeout=timeout)
                for m in markers
            )
        )
    finally:
        await database.dispose()
    books.windows[-1].ended = time.time()


async def checkins_out_of_claims(rig: Rig, books: Books, timeout: float) -> None:
    """Wait (without failing: the books say what is left) until no check-in made due is still
    waiting or claimed, so its dialogue is queued before the patient's marker message."""
    ids = [c.checkin_id for c in books.checkins]
    deadline = time.monotonic() + timeout
    conn = await asyncpg.connect(rig.direct_dsn)
    try:
        while time.monotonic() < deadline:
            waiting = await conn.fetchval(
                "SELECT count(*) FROM followup_checkins "
                "WHERE id = ANY($1::int[]) AND status IN ('scheduled', 'claimed')",
                ids,
            )
            if not waiting:
                return
            await asyncio.sleep(0.5)
    finally:
        await conn.close()


def report(rows: list[Row]) -> str:
    lines = [
        "| fault | pushes | answered | marked with a reason | lost | duplicated | longest delay "
        "| check-ins: due / started / lost / duplicated | check-ins answered (answers) "
        "| complaints: started / confirmed / registered once / lost / duplicated |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        marked = "; ".join(f"{n} {reason}" for reason, n in sorted(row.marked.items())) or "0"
        taken_over = f" ({row.checkins_taken_over} taken over)" if row.checkins_taken_over else ""
        lines.append(
            f"| {row.fault} | {row.pushes} | {row.answered} | {marked} | {row.lost} | {row.duplicated} "
            f"| {row.longest:.1f} s | {row.checkins_due} / {row.checkins_started} / {row.checkins_lost} "
            f"/ {row.checkins_duplicated}{taken_over} | {row.checkins_answered} ({row.answers}) "
            f"| {row.complaints.cell()} |"
        )
    return "\n".join(lines)


def complaint_summary(rows: list[Row]) -> str:
    """The complaints' books over every window, in one line."""
    total = sum((row.complaints.counts for row in rows), Counter[str]())
    return "complaints: " + ", ".join(f"{total[name]} {name}" for name in COMPLAINT_COUNTS)


async def run(args: argparse.Namespace) -> int:
    timing = SHORT if args.short else FULL
    names = args.faults.split(",") if args.faults else (SHORT_FAULTS if args.short else list(FAULTS))
    unknown = [name for name in names if name not in FAULTS]
    if unknown:
        raise SystemExit(f"unknown faults: {unknown}; known: {list(FAULTS)}")
    rig = Rig(args.rasa, args.short)
    books = Books()
    rng = random.Random(args.seed)
    try:
        await rig.start()
        load = Load(rig, books, rng, args.gap)
        console = ConsoleClient(rig.url)
        await console.login(ADMIN_USERNAME, ADMIN_PASSWORD)
        await console.put("/api/console/me/presence", {"presence": "online"})
        wanted = {name: args.checkins * (2 if name == "worker_kill_mid_dispatch" else 1) for name in names}
        complaining = args.complaints * len(names)
        everyone = list(
            await asyncio.gather(
                *(consented(rig) for _ in range(args.patients + sum(wanted.values()) + complaining))
            )
        )
        patients, answering = everyone[: args.patients], everyone[args.patients : len(everyone) - complaining]
        books.complaint_pool = everyone[len(everyone) - complaining :]
        books.checkin_pool = await enrol_for_checkins(rig, console, answering)
        due_events = {openid: asyncio.Event() for openid in answering}
        complaint_events = {openid: asyncio.Event() for openid in books.complaint_pool}
        intakes = {openid: Intake(openid, "") for openid in books.complaint_pool}
        staff_held = patients[: args.staff_chats]
        conversations = {}
        for openid in staff_held:
            conversations[openid] = await hand_to_staff(rig, openid, console)
        books.to_staff.update(staff_held)
        scripts = [
            TO_STAFF if p in books.to_staff else BOOKING if i % 4 == 1 else CHAT
            for i, p in enumerate(patients)
        ]
        books.windows.append(Window("warm-up", time.time()))
        tasks = [asyncio.create_task(load.patient(p, s)) for p, s in zip(patients, scripts, strict=True)]
        tasks.append(asyncio.create_task(load.agent(console, conversations)))
        tasks += [asyncio.create_task(load.checkin_patient(p, due_events[p])) for p in answering]
        tasks += [
            asyncio.create_task(load.complaint_patient(intakes[p], complaint_events[p]))
            for p in books.complaint_pool
        ]
        await asyncio.sleep(timing.lead)
        for name in names:
            books.windows[-1].ended = time.time()
            books.windows.append(Window(name, time.time()))
            print(f"[faults] {name}", file=sys.stderr, flush=True)
            start_complaints(books, intakes, complaint_events, args.complaints)
            await asyncio.sleep(timing.lead)
            await make_due(rig, books, due_events, wanted[name])
            await FAULTS[name](rig, timing)
            await asyncio.sleep(timing.tail)
        load.stopping.set()
        await asyncio.gather(*tasks)
        books.windows[-1].ended = time.time()
        await settle(rig, books, load, args.settle)
        rows = await check(rig, books)
        await console.aclose()
        await load.http.aclose()
    finally:
        rig.stop()
    if not any(row.failed for row in rows):
        await drop_postgres(rig.database_name)  # kept otherwise, for a look at what went wrong
    print(report(rows))
    print(complaint_summary(rows))
    problems = [p for row in rows for p in row.problems]
    for problem in problems[:50]:
        print("  -", problem)
    return 1 if any(row.failed for row in rows) else 0


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--short", action="store_true", help="the short version make test runs")
    parser.add_argument("--faults", help="comma-separated fault names, in order (default: all)")
    parser.add_argument("--rasa", type=int, default=None, help="Rasa servers (default 2; 1 with --short)")
    parser.add_argument(
        "--patients", type=int, default=None, help="patients writing (default 20; 8 with --short)"
    )
    parser.add_argument("--staff-chats", type=int, default=2, help="of them, chats an agent holds")
    parser.add_argument(
        "--checkins",
        type=int,
        default=None,
        help="check-ins made due in each fault window (twice as many for a kill mid-dispatch; "
        "default 3; 1 with --short)",
    )
    parser.add_argument(
        "--complaints",
        type=int,
        default=1,
        help="complaints filed through the chat's intake in each fault window",
    )
    parser.add_argument("--gap", type=float, default=4.0, help="mean seconds between one patient's messages")
    parser.add_argument("--settle", type=float, default=240, help="seconds allowed to settle after the load")
    parser.add_argument("--seed", type=int, default=12)
    args = parser.parse_args()
    args.rasa = args.rasa or (1 if args.short else 2)
    args.patients = args.patients or (8 if args.short else 20)
    args.checkins = args.checkins if args.checkins is not None else (1 if args.short else 3)
    sys.exit(asyncio.run(run(args)))


if __name__ == "__main__":
    main()
