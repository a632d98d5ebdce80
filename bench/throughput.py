"""Bot turns per second end to end: bare Rasa, then the whole stack with one and with two Rasa servers.

Starts two Rasa servers (each with its own action server, one tracker store in Redis), the fake
WeChat API and the stack (web app, worker) on a fresh PostgreSQL database, then finds for each of
three set-ups the highest open-loop rate whose p95 latency stays within --budget:

1. bare: texts posted straight to one Rasa server's REST channel (/webhooks/rest/webhook) from
   --patients distinct senders; latency from each request's scheduled time to Rasa's answer.
2. ours, one Rasa server: signed text pushes to /wechat/oa from --patients consented patients (each
   patient's pushes are --patients/rate seconds apart); latency from each push's scheduled time to
   the fake WeChat API receiving the first answer to that patient (the sandbox's arrival stamp).
3. ours, two Rasa servers: the same, with new patients, after restarting the web app and worker
   with RASA_URLS and ACTION_SERVER_URLS listing both, WORKER_CONCURRENCY=--worker-concurrency-2
   and --workers-2 worker processes.

Rasa reads and writes a conversation's whole tracker every turn, so a turn costs more as the
conversation grows: each set-up starts with its own senders, warmed up with one turn each, and
every step reports how many turns each sender had had before it.

Every request is scheduled at a fixed time and timed from it (no coordinated omission); a request
that fails or is not answered counts as infinitely slow. The search starts at --start-rate and
multiplies the rate by --factor until p95 exceeds the budget (or --max-rate is passed), then
bisects --bisect times between the highest rate within the budget and the lowest over it. Each step
sends for --seconds, then waits until every turn is answered (or nothing has arrived for a while),
so the next step starts on an idle stack. Throughput is the completed turns per second of the
highest rate within the budget. CPU use of each process while a step sends (utime + stime from
/proc, % of one core) says what was busy; "rest of machine" is everything else, other work on the
same cores included. On a shared machine a step during which that other work took more than
--max-other % of a core is run again (up to --retries times; the least disturbed attempt counts).

Every process gets this one's environment: TF_INTER_OP_PARALLELISM_THREADS and
TF_INTRA_OP_PARALLELISM_THREADS set here reach the Rasa servers (the result lists them).

The fake WeChat API runs at nice 15 (WeChat's servers are not on our machine in production) and the
worker at nice 10, as in the Procfile; the worker's periodic jobs run at their default intervals.

    .venv/bin/python bench/throughput.py [--seconds 5] [--budget 1.0] [--max-rate 200]
                                         [--start-rate 5] [--factor 1.5] [--bisect 3]
                                         [--patients 240] [--worker-concurrency-1 N]
                                         [--worker-concurrency-2 4] [--workers-2 1]
                                         [--max-other 25] [--retries 2] [--quick]

Needs PostgreSQL and Redis as for the test suite (TEST_POSTGRES_DB, TEST_REDIS_BASE).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
import os
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

import aiohttp
import redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.webhook_latency import default_timings, percentile
from channels.sandbox.pushes import Push
from crm_backend.config import Settings
from crm_backend.conversations.processing import DELAYED
from tests.conftest import POSTGRES_TEST_DB, _fresh_postgres, _fresh_redis
from tests.support.stack import (
    ROOT,
    FakeWeChat,
    Process,
    RasaServers,
    Stack,
    free_port,
    new_openid,
    start_fake_wechat,
    start_rasa,
)

TEXTS = ["你好", "谢谢", "在吗", "早上好", "多谢了"]
#: Thread settings Rasa's TensorFlow reads from the environment (listed in the result when set).
TENSORFLOW_THREADS = ("TF_INTER_OP_PARALLELISM_THREADS", "TF_INTRA_OP_PARALLELISM_THREADS", "OMP_NUM_THREADS")
#: How long a request or an answer may take before the turn counts as failed.
TURN_TIMEOUT_SECONDS = 60.0
#: A drain ends once nothing has arrived at the fake WeChat API for this long.
QUIET_SECONDS = 5.0


def log(message: str) -> None:
    """Progress on stderr; stdout gets only the JSON result."""
    print(f"[{datetime.now(UTC):%H:%M:%S}] {message}", file=sys.stderr, flush=True)


# -- CPU use from /proc --------------------------------------------------------------------------

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class ProcInfo:
    pgid: int
    ticks: int  # utime + stime, all threads
    cmdline: str


def _processes() -> dict[int, ProcInfo]:
    found: dict[int, ProcInfo] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
            cmdline = Path(entry.path, "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # exited meanwhile
        fields = stat[stat.rindex(")") + 2 :].split()
        found[int(entry.name)] = ProcInfo(int(fields[2]), int(fields[11]) + int(fields[12]), cmdline)
    return found


def _machine_busy_ticks() -> int:
    """Ticks all cores spent on anything but idle and iowait, since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return sum(values) - values[3] - values[4]


#: When (monotonic), the machine's busy ticks, and each labelled pid's label and ticks.
Snapshot = tuple[float, int, dict[int, tuple[str, int]]]


@dataclass
class CpuMeter:
    """Labels processes by process group (our children run in their own sessions), by pid, or as
    PostgreSQL backends of our database; everything else is "rest of machine"."""

    groups: dict[str, int]
    pids: dict[str, int]
    database: str

    def _label(self, pid: int, info: ProcInfo) -> str | None:
        for label, pgid in self.groups.items():
            if info.pgid == pgid:
                return label
        for label, own in self.pids.items():
            if pid == own:
                return label
        if info.cmdline.startswith("postgres:"):
            ours = f" {self.database} " in info.cmdline
            return "postgres (our database)" if ours else "postgres (background, other databases)"
        return None

    def snapshot(self) -> Snapshot:
        labelled = {}
        for pid, info in _processes().items():
            label = self._label(pid, info)
            if label is not None:
                labelled[pid] = (label, info.ticks)
        return time.monotonic(), _machine_busy_ticks(), labelled

    @staticmethod
    def usage(before: Snapshot, after: Snapshot) -> dict[str, float]:
        """% of one core per label between two snapshots (a process started meanwhile counts whole)."""
        wall = after[0] - before[0]
        per_label: dict[str, int] = defaultdict(int)
        for pid, (label, ticks) in after[2].items():
            start = before[2].get(pid)
            per_label[label] += ticks - (start[1] if start and start[0] == label else 0)
        machine = after[1] - before[1]
        per_label["rest of machine"] = machine - sum(per_label.values())
        result = {label: round(100 * ticks / CLOCK_TICKS / wall, 1) for label, ticks in per_label.items()}
        result["machine"] = round(100 * machine / CLOCK_TICKS / wall, 1)
        return dict(sorted(result.items(), key=lambda item: -item[1]))


# -- one step: open-loop load at one rate --------------------------------------------------------


@dataclass
class Step:
    rate: float
    seconds: float
    latencies: list[float]  # from the scheduled time; math.inf for a turn that failed
    cpu: dict[str, float]
    extra: dict[str, Any] = field(default_factory=dict)

    def p95(self) -> float:
        return percentile(self.latencies, 95)

    def other_work(self) -> float:
        """% of a core the machine spent on processes not ours while this step sent."""
        return self.cpu.get("rest of machine", 0.0)

    def achieved(self) -> float:
        """Completed turns over the time from the first scheduled request to the last answer: the
        rate the set-up kept up with, which an overloaded step shows below the offered rate."""
        done = [i / self.rate + value for i, value in enumerate(self.latencies) if math.isfinite(value)]
        return len(done) / max(done) if done else 0.0

    def report(self, budget: float) -> dict[str, Any]:
        completed = sum(1 for value in self.latencies if math.isfinite(value))
        return {
            "rate": round(self.rate, 2),
            "requests": len(self.latencies),
            "completed": completed,
            "failed": len(self.latencies) - completed,
            "turns_per_s": round(completed / self.seconds, 2),
            "achieved_per_s": round(self.achieved(), 2),
            "p50_ms": _ms(percentile(self.latencies, 50)),
            "p95_ms": _ms(self.p95()),
            "p99_ms": _ms(percentile(self.latencies, 99)),
            "max_ms": _ms(max(self.latencies)),
            "within_budget": self.p95() <= budget,
            "other_work_pct_of_one_core": self.other_work(),
            **self.extra,
            "cpu_pct_of_one_core": self.cpu,
        }


def _ms(seconds: float) -> float | None:
    return round(seconds * 1000, 1) if math.isfinite(seconds) else None


async def open_loop(rate: float, seconds: float, send: Callable[[int, float], Awaitable[None]]) -> float:
    """Call send(i, scheduled) at start + i / rate for every i; returns start (perf_counter)."""
    total = max(1, round(rate * seconds))
    start = time.perf_counter() + 0.2

    async def one(i: int) -> None:
        scheduled = start + i / rate
        await asyncio.sleep(max(0.0, scheduled - time.perf_counter()))
        await send(i, scheduled)

    await asyncio.gather(*(one(i) for i in range(total)))
    return start


@dataclass
class Load:
    """What every step of one set-up shares."""

    http: aiohttp.ClientSession
    meter: CpuMeter
    senders: list[str]
    #: Turns sent so far: each step goes on round the senders and texts where the last stopped.
    sent: int = 0

    def text(self, i: int) -> str:
        return TEXTS[((self.sent + i) // len(self.senders)) % len(TEXTS)]

    def sender(self, i: int) -> str:
        return self.senders[(self.sent + i) % len(self.senders)]

    def turns_per_sender(self) -> float:
        """How long the conversations are so far (Rasa's turn costs more as they grow)."""
        return round(self.sent / len(self.senders), 1)


async def send_metered(
    load: Load, rate: float, seconds: float, send: Callable[[int, float], Awaitable[None]]
) -> dict[str, float]:
    """Run one step's open-loop sending; returns each process's CPU use while it sent."""

    async def meter() -> dict[str, float]:
        before = load.meter.snapshot()
        await asyncio.sleep(seconds + 0.2)
        return CpuMeter.usage(before, load.meter.snapshot())

    _, cpu = await asyncio.gather(open_loop(rate, seconds, send), meter())
    return cpu


async def bare_step(load: Load, rasa_url: str, rate: float, seconds: float) -> Step:
    total = max(1, round(rate * seconds))
    latencies: list[float] = [math.inf] * total
    url = f"{rasa_url}/webhooks/rest/webhook"
    timeout = aiohttp.ClientTimeout(total=TURN_TIMEOUT_SECONDS)
    bodies = [{"sender": load.sender(i), "message": load.text(i)} for i in range(total)]

    async def send(i: int, scheduled: float) -> None:
        try:
            async with load.http.post(url, json=bodies[i], timeout=timeout) as response:
                await response.read()
                if response.status == 200:
                    latencies[i] = time.perf_counter() - scheduled
        except (aiohttp.ClientError, TimeoutError):
            pass

    before = load.turns_per_sender()
    gc.collect()
    gc.disable()
    try:
        cpu = await send_metered(load, rate, seconds, send)
    finally:
        gc.enable()
    load.sent += total
    return Step(rate, seconds, latencies, cpu, {"turns_per_sender_before": before})


async def fake_sends(http: aiohttp.ClientSession, wechat: FakeWeChat, **params: Any) -> list[dict[str, Any]]:
    async with http.get(f"{wechat.base}/sandbox/sent", params=params) as response:
        response.raise_for_status()
        return await response.json()


async def last_seq(http: aiohttp.ClientSession, wechat: FakeWeChat) -> int:
    return max((int(item["seq"]) for item in await fake_sends(http, wechat)), default=0)


async def post_push(http: aiohttp.ClientSession, stack: Stack, push: Push) -> bool:
    async with http.post(
        f"{stack.url}/wechat/oa", params=push.params, data=push.body, headers=push.headers
    ) as response:
        return response.status == 200 and await response.text() == "success"


def _stamp(item: dict[str, Any]) -> float:
    return datetime.fromisoformat(str(item["at"])).timestamp()


async def ours_step(load: Load, stack: Stack, rate: float, seconds: float) -> Step:
    """Pushes from the patients in turn; each push's answer is the first send to its patient that
    arrived after the push left and after the answer of that patient's previous push."""
    total = max(1, round(rate * seconds))
    baseline = await last_seq(load.http, stack.wechat)
    # Signed before the clock starts: the load generator must not be the bottleneck.
    pushes = [stack.build("text", load.sender(i), content=load.text(i)) for i in range(total)]
    scheduled_at = [0.0] * total  # wall clock, to compare with the sandbox's stamps
    left_at = [0.0] * total
    accepted = [False] * total
    wall_offset = time.time() - time.perf_counter()
    before = load.turns_per_sender()

    async def send(i: int, scheduled: float) -> None:
        scheduled_at[i] = scheduled + wall_offset
        left_at[i] = time.time()
        try:
            accepted[i] = await post_push(load.http, stack, pushes[i])
        except aiohttp.ClientError:
            pass

    gc.collect()
    gc.disable()
    try:
        cpu = await send_metered(load, rate, seconds, send)
        # Drain: read what the fake WeChat API received until every push has its answer, or
        # nothing more arrives (a push that was never answered counts as failed).
        by_patient: dict[str, list[int]] = defaultdict(list)
        for i in range(total):
            if accepted[i]:
                by_patient[load.sender(i)].append(i)
        answers: dict[int, dict[str, Any]] = {}
        sends: list[dict[str, Any]] = []
        last_arrival = time.monotonic()
        deadline = time.monotonic() + TURN_TIMEOUT_SECONDS
        while True:
            new = await fake_sends(load.http, stack.wechat, after=sends[-1]["seq"] if sends else baseline)
            if new:
                sends.extend(new)
                last_arrival = time.monotonic()
            answers = _attribute(by_patient, sends, left_at)
            done = len(answers) == sum(accepted)
            if done or time.monotonic() - last_arrival > QUIET_SECONDS or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
    finally:
        gc.enable()
    load.sent += total
    latencies = [math.inf] * total
    for i, item in answers.items():
        latencies[i] = _stamp(item) - scheduled_at[i]
    # A push sent before its patient's previous one was answered: its answer may be mistaken for
    # a later part of the previous one (rare while each patient's pushes are far apart).
    overlapping = sum(
        1
        for indices in by_patient.values()
        for previous, current in pairwise(indices)
        if previous not in answers or _stamp(answers[previous]) > left_at[current]
    )
    extra = {
        "turns_per_sender_before": before,
        "webhook_refused": total - sum(accepted),
        "delay_notices": sum(1 for item in sends if item.get("content") == DELAYED),
        "seconds_between_a_patients_pushes": round(len(load.senders) / rate, 2),
        "overlapping_turns": overlapping,
    }
    return Step(rate, seconds, latencies, cpu, extra)


def _attribute(
    by_patient: dict[str, list[int]], sends: list[dict[str, Any]], left_at: list[float]
) -> dict[int, dict[str, Any]]:
    per_user: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for item in sends:
        per_user[str(item.get("touser"))].append(item)
    answers: dict[int, dict[str, Any]] = {}
    for openid, indices in by_patient.items():
        received = iter(per_user.get(openid, []))
        for i in indices:
            # The answer cannot arrive before its push left (1 ms for the two clocks' rounding).
            item = next((item for item in received if _stamp(item) >= left_at[i] - 0.001), None)
            if item is None:
                break
            answers[i] = item
    return answers


# -- the search ----------------------------------------------------------------------------------


async def search(
    name: str, measure: Callable[[float], Awaitable[Step]], args: argparse.Namespace
) -> dict[str, Any]:
    """Rates rising by args.factor until p95 exceeds the budget, then args.bisect bisections."""
    steps: list[Step] = []

    async def step_at(rate: float) -> Step:
        """One step; again (up to args.retries times) while other work took more than
        args.max_other % of a core, keeping the least disturbed attempt."""
        attempts: list[Step] = []
        while True:
            step = await measure(rate)
            attempts.append(step)
            report = step.report(args.budget)
            log(
                f"{name}: {rate:.1f}/s → {report['turns_per_s']}/s completed, p50 {report['p50_ms']} ms, "
                f"p95 {report['p95_ms']} ms, failed {report['failed']}, "
                f"kept up with {report['achieved_per_s']}/s, other work {step.other_work()} % of a core"
            )
            await asyncio.sleep(args.rest)
            if step.other_work() <= args.max_other or len(attempts) > args.retries:
                break
        step = min(attempts, key=Step.other_work)
        step.extra["attempts"] = len(attempts)
        steps.append(step)
        return step

    good: Step | None = None
    bad: Step | None = None
    rate = args.start_rate
    while rate <= args.max_rate:
        step = await step_at(rate)
        if step.p95() <= args.budget:
            good, rate = step, rate * args.factor
        else:
            bad = step
            break
    if good is None and bad is not None:
        # Over the budget from the start: come down until a rate is within it.
        for _ in range(4):
            step = await step_at(bad.rate / args.factor)
            if step.p95() <= args.budget:
                good = step
                break
            bad = step
    if good is not None and bad is not None:
        low, high = good.rate, bad.rate
        for _ in range(args.bisect):
            middle = (low + high) / 2
            if (await step_at(middle)).p95() <= args.budget:
                low = middle
            else:
                high = middle
    within = [step for step in steps if step.p95() <= args.budget]
    chosen = max(within, key=lambda step: step.rate) if within else None
    return {
        "chosen": chosen.report(args.budget) if chosen else None,
        "max_achieved_per_s": round(max(step.achieved() for step in steps), 2) if steps else None,
        "limited_by_max_rate": bad is None,
        "steps": [step.report(args.budget) for step in steps],
    }


# -- set-ups -------------------------------------------------------------------------------------


async def consented_patients(http: aiohttp.ClientSession, stack: Stack, count: int) -> list[str]:
    """New patients who followed the account and said 同意, several at a time."""
    gate = asyncio.Semaphore(16)

    async def sends_to(openid: str, count: int) -> None:
        deadline = time.monotonic() + TURN_TIMEOUT_SECONDS
        seen: list[dict[str, Any]] = []
        while len(seen) < count:
            if time.monotonic() > deadline:
                tail = stack.worker.tail() if stack.worker else ""
                raise TimeoutError(f"{openid}: {len(seen)} of {count} answers\n{tail}")
            after = seen[-1]["seq"] if seen else 0
            seen += await fake_sends(http, stack.wechat, touser=openid, after=after, wait=10)

    async def one() -> str:
        openid = new_openid()
        async with gate:
            assert await post_push(http, stack, stack.build("subscribe", openid))
            await sends_to(openid, 2)  # welcome and the consent request
            assert await post_push(http, stack, stack.build("text", openid, content="同意"))
            await sends_to(openid, 3)
        return openid

    return await asyncio.gather(*(one() for _ in range(count)))


def _pgid(process: Process | None) -> int:
    assert process is not None and process.popen is not None
    return process.popen.pid


def cpu_meter(
    servers: list[RasaServers], wechat: FakeWeChat, redis_pid: int, stack: Stack | None = None
) -> CpuMeter:
    """The processes to watch: Rasa pairs and the fake WeChat API, and the stack's once it runs."""
    groups = {"fake wechat": _pgid(wechat.process)}
    for n, pair in enumerate(servers, start=1):
        groups[f"rasa {n}"] = _pgid(pair.rasa)
        groups[f"actions {n}"] = _pgid(pair.actions)
    if stack is not None:
        groups |= {"web": _pgid(stack.web), "worker": _pgid(stack.worker)}
        for n, extra in enumerate(stack.extra_workers, start=2):
            groups[f"worker {n}"] = _pgid(extra)
    return CpuMeter(groups, {"load generator": os.getpid(), "redis": redis_pid}, POSTGRES_TEST_DB)


def restart_stack(stack: Stack, workers: int, **settings: str) -> None:
    stack.stop()
    stack.extra_workers.clear()
    stack.extra_env.update(settings)
    stack.start_web()
    stack.start_worker()
    for _ in range(workers - 1):
        stack.start_extra_worker()
    stack.wait_healthy()


def _rasa_base(pair: RasaServers) -> str:
    return f"http://127.0.0.1:{pair.rasa_port}"


def _action_base(pair: RasaServers) -> str:
    return f"http://127.0.0.1:{pair.action_port}"


async def run(args: argparse.Namespace) -> dict[str, Any]:
    rasa_redis = _fresh_redis("rasa")
    redis_pid = int(redis.Redis.from_url(rasa_redis).info("server")["process_id"])
    port = free_port()
    crm_url = f"http://127.0.0.1:{port}"
    log("starting two Rasa servers with their action servers (about a minute)")
    started = await asyncio.gather(
        asyncio.to_thread(start_rasa, rasa_redis, crm_url),
        asyncio.to_thread(start_rasa, rasa_redis, crm_url, label="-2"),
        return_exceptions=True,
    )
    servers = [pair for pair in started if isinstance(pair, RasaServers)]
    wechat: FakeWeChat | None = None
    stack: Stack | None = None
    try:
        for outcome in started:
            if isinstance(outcome, BaseException):
                raise outcome
        first, second = servers
        wechat = start_fake_wechat(niceness=15)
        database_url = await _fresh_postgres()
        # The worker's periodic jobs at their defaults, not the test suite's short intervals.
        extra_env = default_timings()
        stack = Stack(
            "tput", database_url, _fresh_redis("postgresql"), first, wechat, port=port, extra_env=extra_env
        )
        return await measure_all(args, stack, first, second, redis_pid)
    finally:
        if stack is not None:
            stack.stop()
        if wechat is not None:
            wechat.process.stop()
        for pair in servers:
            pair.stop()


def _client() -> aiohttp.ClientSession:
    """Each set-up has its own connections: the web app is restarted between them."""
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1000))


async def measure_ours(
    name: str, args: argparse.Namespace, stack: Stack, servers: list[RasaServers], redis_pid: int
) -> dict[str, Any]:
    """The search through the running stack, with new patients: Rasa reads and writes a
    conversation's whole tracker every turn, so a turn costs more as the conversation grows, and
    each set-up starts from conversations of one turn."""
    async with _client() as http:
        log(f"{name}: {args.patients} new consented patients")
        patients = await consented_patients(http, stack, args.patients)
        await asyncio.sleep(1)  # the consent dialogue's last answers
        load = Load(http, cpu_meter(servers, stack.wechat, redis_pid, stack), patients)
        await warm_up(load, lambda rate, s: ours_step(load, stack, rate, s), args)
        return await search(name, lambda rate: ours_step(load, stack, rate, args.seconds), args)


async def measure_all(
    args: argparse.Namespace, stack: Stack, first: RasaServers, second: RasaServers, redis_pid: int
) -> dict[str, Any]:
    wechat = stack.wechat
    default_concurrency = Settings.model_fields["worker_concurrency"].default
    concurrency_1 = args.worker_concurrency_1 or default_concurrency
    stack.migrate()
    servers = [first, second]
    async with _client() as http:
        senders = [f"bench-bare-{new_openid()}" for _ in range(args.patients)]
        bare_load = Load(http, cpu_meter(servers, wechat, redis_pid), senders)
        log(f"bare Rasa: warming up {len(senders)} senders")
        await warm_up(bare_load, lambda rate, s: bare_step(bare_load, _rasa_base(first), rate, s), args)
        bare = await search(
            "bare", lambda rate: bare_step(bare_load, _rasa_base(first), rate, args.seconds), args
        )

    restart_stack(stack, 1, WORKER_CONCURRENCY=str(concurrency_1))
    one = await measure_ours("ours, 1 Rasa", args, stack, servers, redis_pid)

    restart_stack(
        stack,
        args.workers_2,
        RASA_URLS=",".join(_rasa_base(pair) for pair in servers),
        ACTION_SERVER_URLS=",".join(_action_base(pair) for pair in servers),
        WORKER_CONCURRENCY=str(args.worker_concurrency_2),
    )
    two = await measure_ours("ours, 2 Rasa", args, stack, servers, redis_pid)

    def rate_of(result: dict[str, Any]) -> float | None:
        return result["chosen"]["turns_per_s"] if result["chosen"] else None

    def ratio(a: float | None, b: float | None) -> float | None:
        return round(a / b, 3) if a and b else None

    def at_chosen(result: dict[str, Any], key: str) -> Any:
        return result["chosen"][key] if result["chosen"] else None

    summary = {
        "bare_rasa_turns_per_s": rate_of(bare),
        "ours_1_rasa_turns_per_s": rate_of(one),
        "ratio_ours_to_bare": ratio(rate_of(one), rate_of(bare)),
        "ours_2_rasa_turns_per_s": rate_of(two),
        "ratio_2_to_1": ratio(rate_of(two), rate_of(one)),
        "p95_ms_at_chosen_rate": {
            "bare_rasa": at_chosen(bare, "p95_ms"),
            "ours_1_rasa": at_chosen(one, "p95_ms"),
            "ours_2_rasa": at_chosen(two, "p95_ms"),
        },
        # The most any step kept up with, overloaded ones included (p95 over the budget there).
        "max_achieved_per_s": {
            "bare_rasa": bare["max_achieved_per_s"],
            "ours_1_rasa": one["max_achieved_per_s"],
            "ours_2_rasa": two["max_achieved_per_s"],
        },
        "worker_concurrency": {"ours_1_rasa": concurrency_1, "ours_2_rasa": args.worker_concurrency_2},
        "workers": {"ours_1_rasa": 1, "ours_2_rasa": args.workers_2},
        "cpu_pct_of_one_core_at_chosen_rate": {
            "bare_rasa": at_chosen(bare, "cpu_pct_of_one_core"),
            "ours_1_rasa": at_chosen(one, "cpu_pct_of_one_core"),
            "ours_2_rasa": at_chosen(two, "cpu_pct_of_one_core"),
        },
    }
    return {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": _commit(),
        "cores": os.cpu_count(),
        # Passed on to every process, Rasa's included (TF_INTRA_OP_PARALLELISM_THREADS, say).
        "tensorflow_env": {key: os.environ[key] for key in TENSORFLOW_THREADS if key in os.environ},
        "settings": {
            key: getattr(args, key)
            for key in (
                "seconds",
                "budget",
                "start_rate",
                "factor",
                "bisect",
                "max_rate",
                "patients",
                "max_other",
                "retries",
            )
        },
        "summary": summary,
        "bare_rasa": bare,
        "ours_1_rasa": one,
        "ours_2_rasa": two,
    }


async def warm_up(
    load: Load, step: Callable[[float, float], Awaitable[Step]], args: argparse.Namespace
) -> None:
    """One unmeasured round of every sender over about 15 s: first turns (a new tracker, Rasa's
    first predictions) are not what the search is about."""
    rate = max(args.start_rate, len(load.senders) / 15)
    await step(rate, len(load.senders) / rate)
    await asyncio.sleep(args.rest)


def _commit() -> str:
    result = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    return result.stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=5, help="sending time of each step")
    parser.add_argument("--budget", type=float, default=1.0, help="p95 latency allowed, seconds")
    parser.add_argument("--max-rate", type=float, default=200, help="turns/s the search never exceeds")
    parser.add_argument("--start-rate", type=float, default=5)
    parser.add_argument("--factor", type=float, default=1.5, help="rate multiplier between steps")
    parser.add_argument("--bisect", type=int, default=3, help="bisection steps after the rise")
    parser.add_argument("--patients", type=int, default=240, help="patients (and bare senders)")
    parser.add_argument(
        "--max-other",
        type=float,
        default=25,
        help="a step during which other processes took more than this %% of a core is run again",
    )
    parser.add_argument("--retries", type=int, default=2, help="repeats of a disturbed step")
    parser.add_argument("--rest", type=float, default=1.0, help="pause after each step, seconds")
    parser.add_argument(
        "--worker-concurrency-1",
        type=int,
        default=None,
        help="WORKER_CONCURRENCY with one Rasa (default: its default)",
    )
    parser.add_argument(
        "--worker-concurrency-2", type=int, default=4, help="WORKER_CONCURRENCY with two Rasa"
    )
    parser.add_argument("--workers-2", type=int, default=1, help="worker processes with two Rasa")
    parser.add_argument("--quick", action="store_true", help="a short smoke run (2 s steps, 60 patients)")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.patients, args.factor, args.bisect = 2.0, 60, 2.0, 1
        args.rest, args.retries, args.start_rate = 0.5, 0, max(args.start_rate, 8.0)
    result = asyncio.run(run(args))
    print(json.dumps(result, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
