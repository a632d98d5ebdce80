"""Webhook acknowledgement latency under load, and end-to-end answer latency against bare Rasa.

Starts the real stack (Rasa, action server, web app, worker, fake WeChat API) on a fresh database,
then runs two phases in one process:

1. e2e: --rounds conversations of --turns sequential turns, each with a new consented patient; for
   each turn, the time from posting the push to the fake WeChat API receiving the answer, against
   the same text sent straight to Rasa's REST channel.
2. ack: open-loop load of signed text pushes at --rate pushes/s for --seconds; every request is
   scheduled at a fixed time (no coordinated omission) and its latency is measured from that time.

    .venv/bin/python bench/webhook_latency.py [--db sqlite|postgresql] [--rate 300] [--seconds 10]
                                              [--turns 40] [--rounds 3] [--pause-worker] [--e2e-only]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path

import aiohttp
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from channels.sandbox.pushes import Push
from crm_backend.config import Settings
from tests.conftest import _fresh_postgres, _fresh_redis
from tests.support.stack import Stack, new_openid, start_fake_wechat, start_rasa


def default_timings() -> dict[str, str]:
    """Settings whose values tests shorten, back at their defaults."""
    shortened = (
        "SWEEPER_GRACE_SECONDS",
        "SWEEPER_INTERVAL_SECONDS",
        "STREAM_RECLAIM_IDLE_MS",
        "CONSOLE_GONE_AFTER_SECONDS",
    )
    fields = {field.alias: field for field in Settings.model_fields.values()}
    return {name: str(fields[name].default) for name in shortened}


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered)) - 1))
    return ordered[index]


def summary(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50_ms": round(percentile(values, 50) * 1000, 2),
        "p90_ms": round(percentile(values, 90) * 1000, 2),
        "p99_ms": round(percentile(values, 99) * 1000, 2),
        "max_ms": round(max(values) * 1000, 2),
        "mean_ms": round(statistics.fmean(values) * 1000, 2),
    }


async def ack_phase(stack: Stack, rate: float, seconds: float, patients: int) -> dict[str, object]:
    total = int(rate * seconds)
    openids = [new_openid() for _ in range(patients)]
    # Pushes are built (signed) before the clock starts: the load generator must not be the bottleneck.
    pushes = [stack.build("text", openids[i % patients], content=f"测试消息 {i}") for i in range(total)]
    latencies: list[float] = []
    failures = 0
    url = f"{stack.url}/wechat/oa"
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=300)) as client:

        async def post(push: Push) -> bool:
            async with client.post(url, params=push.params, data=push.body, headers=push.headers) as response:
                return response.status == 200 and await response.text() == "success"

        await asyncio.gather(*(post(stack.build("text", new_openid(), content="热身")) for _ in range(50)))
        # The load generator must not stall either: a full garbage collection in this process
        # (see docs/PERFORMANCE.md) would be counted against the server for every request
        # scheduled meanwhile.
        gc.collect()
        gc.disable()
        start = time.perf_counter() + 0.2

        async def one(i: int) -> None:
            nonlocal failures
            scheduled = start + i / rate
            await asyncio.sleep(max(0.0, scheduled - time.perf_counter()))
            ok = await post(pushes[i])
            # Measured from the scheduled send time, so a slow server cannot hide queueing delay.
            latencies.append(time.perf_counter() - scheduled)
            failures += not ok

        await asyncio.gather(*(one(i) for i in range(total)))
        elapsed = time.perf_counter() - start
        gc.enable()
    return {
        "requested_rate": rate,
        "achieved_rate": round(total / elapsed, 1),
        "failures": failures,
        **summary(latencies),
    }


async def next_answer(client: httpx.AsyncClient, stack: Stack, openid: str, after: int) -> dict[str, object]:
    """The first send to `openid` after seq `after`; the sandbox holds the request until it arrives
    (no polling loop competing with the stack for the CPU while a turn is measured)."""
    while True:
        response = await client.get(
            f"{stack.wechat.base}/sandbox/sent", params={"touser": openid, "after": after, "wait": 10}
        )
        items = response.json()
        if items:
            return items[0]


async def e2e_phase(stack: Stack, turns: int, rounds: int) -> dict[str, object]:
    """`rounds` conversations of `turns` turns, each with a new patient (and a new bare sender), so
    the samples cover the same conversation lengths however many rounds are run."""
    texts = ["你好", "谢谢", "在吗", "早上好", "多谢了"]
    ours: list[float] = []
    bare: list[float] = []
    rasa_url = f"http://127.0.0.1:{stack.rasa.rasa_port}/webhooks/rest/webhook"
    # One long-lived client each for us and for Rasa: creating a client (its SSL context) is slow
    # enough to distort a turn (docs/PERFORMANCE.md).
    async with httpx.AsyncClient(timeout=30) as client, httpx.AsyncClient(timeout=30) as waiter:

        async def bare_turn(openid: str, text: str) -> None:
            t0 = time.time()
            response = await client.post(rasa_url, json={"sender": f"bench-bare-{openid}", "message": text})
            response.raise_for_status()
            bare.append(time.time() - t0)

        async def our_turn(openid: str, text: str, last_seq: int) -> None:
            push = stack.build("text", openid, content=text)
            answer = asyncio.create_task(next_answer(waiter, stack, openid, last_seq))
            # The wait for the answer is parked at the fake WeChat API before the clock starts:
            # sending it must not hold up this process's push, nor take the CPU during the turn.
            await asyncio.sleep(0.01)
            t0 = time.time()
            response = await stack.post(push, client)
            assert response.text == "success", response.text
            first = await answer
            ours.append(datetime.fromisoformat(str(first["at"])).timestamp() - t0)

        gc.disable()
        for _ in range(rounds):
            openid = await stack.consented_patient()
            last_seq = max((int(item["seq"]) for item in stack.wechat.sent(openid)), default=0)
            for i in range(turns):
                text = texts[i % len(texts)]
                # The same text to a bare sender in the same state. Rasa answers a little faster
                # right after another answer, so which of the two goes first alternates.
                if i % 2:
                    await our_turn(openid, text, last_seq)
                    await bare_turn(openid, text)
                else:
                    await bare_turn(openid, text)
                    await our_turn(openid, text, last_seq)
                # Let multi-message turns finish before the next one. The load generator's own
                # garbage collection runs here, between turns, not inside a timed one.
                gc.collect()
                await asyncio.sleep(0.05)
                last_seq = max((int(item["seq"]) for item in stack.wechat.sent(openid)), default=last_seq)
    gc.enable()
    ours_summary, bare_summary = summary(ours), summary(bare)
    overhead = (ours_summary["p50_ms"] - bare_summary["p50_ms"]) / bare_summary["p50_ms"]
    return {"ours": ours_summary, "bare_rasa": bare_summary, "overhead_p50_pct": round(overhead * 100, 1)}


def fresh_sqlite_file() -> Path:
    path = Path(__file__).resolve().parents[1] / "var" / "bench" / "bench.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return path


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--rate", type=float, default=300)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--patients", type=int, default=300)
    parser.add_argument("--turns", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3, help="e2e conversations, a new patient each")
    parser.add_argument(
        "--pause-worker",
        action="store_true",
        help="stop the worker before the ack phase: the webhook alone, with processing left queued",
    )
    parser.add_argument("--e2e-only", action="store_true", help="skip the acknowledgement phase")
    args = parser.parse_args()

    rasa = start_rasa(_fresh_redis("rasa"))
    wechat = start_fake_wechat()
    if args.db == "sqlite":
        database_url = f"sqlite+aiosqlite:///{fresh_sqlite_file()}"
    else:
        database_url = await _fresh_postgres()
    # The test suite's stack runs the worker's periodic jobs every second or two so crash tests
    # finish quickly; the benchmark measures the product as configured by default.
    stack = Stack(
        f"bench-{args.db}", database_url, _fresh_redis(args.db), rasa, wechat, extra_env=default_timings()
    )
    try:
        stack.migrate()
        stack.start_web()
        stack.start_worker()
        stack.wait_healthy()
        # The fake WeChat API stamps each answer's arrival: at normal priority while one turn at a
        # time is timed, so its own scheduling does not count as ours.
        e2e = await e2e_phase(stack, args.turns, args.rounds)
        if args.e2e_only:
            print(json.dumps({"database": args.db, "e2e": e2e}, indent=2, ensure_ascii=False))
            return
        # Under load WeChat's servers are not on our machine: its stand-in then yields the CPU.
        assert wechat.process.popen is not None
        os.setpriority(os.PRIO_PROCESS, wechat.process.popen.pid, 15)
        if args.pause_worker and stack.worker is not None:
            stack.worker.stop()
        ack = await ack_phase(stack, args.rate, args.seconds, args.patients)
        result = {"database": args.db, "worker_during_ack": not args.pause_worker, "ack": ack, "e2e": e2e}
        print(json.dumps(result, indent=2, ensure_ascii=False))
    finally:
        stack.stop()
        wechat.process.stop()
        rasa.stop()


if __name__ == "__main__":
    asyncio.run(main())
