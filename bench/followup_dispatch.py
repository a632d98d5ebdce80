"""Follow-up dispatch at scale: N check-ins due at 09:00 for N patients, half inside WeChat's
customer-service window (started in chat: Rasa asks the first question) and half outside it (a
template message with the questionnaire link), started by two workers and one Rasa server.

Measures the time from the workers' start to the last check-in started (its first message accepted
by the fake WeChat API), checks that none started twice, and meanwhile sends pushes from other
patients to the webhook at a steady rate to measure the acknowledgement's p99 during the run.

    .venv/bin/python bench/followup_dispatch.py [--checkins 10000] [--ack-rate 20] [--timeout 900]

Goal (issue 15): all started within 10 minutes, acknowledgement p99 < 20 ms. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.webhook_latency import default_timings, summary
from crm_backend.config import HOSPITAL_TZ, Settings
from crm_backend.consent.models import ConsentRecord
from crm_backend.database.core import Database
from crm_backend.followups.enrolment import EnrolmentRequest, enrol
from crm_backend.followups.models import EnrolmentSource, FollowupCheckin
from crm_backend.followups.plan_service import current_versions, ensure_shipped_plans
from crm_backend.patients.models import Patient, WeChatIdentity
from crm_backend.staff.models import Team
from tests.conftest import _fresh_postgres, _fresh_redis
from tests.support.stack import Process, Stack, free_port, new_openid, start_fake_wechat, start_rasa

TEMPLATE_ID = "bench-followup-template"
BATCH = 500


async def seed(database_url: str, appid: str, count: int, now: datetime) -> dict[str, str]:
    """`count` consented patients enrolled in the cholecystectomy plan, each with one check-in due at
    09:00 today (or now, before 09:00); even-numbered ones wrote an hour ago (inside the window),
    odd-numbered ones five days ago. Returns openid → "chat" | "template"."""
    db = Database(database_url)
    expected: dict[str, str] = {}
    local = now.astimezone(HOSPITAL_TZ)
    due = min(datetime.combine(local.date(), datetime.min.time().replace(hour=9), tzinfo=HOSPITAL_TZ), now)
    settings = Settings()
    try:
        async with db.sessions() as session:
            await ensure_shipped_plans(session)
            team = Team(name="护理团队")
            session.add(team)
            await session.commit()
            version = next(
                v for v in await current_versions(session) if v.definition["code"] == "lap_cholecystectomy"
            )
            team_id, version_id = team.id, version.id
        for start in range(0, count, BATCH):
            async with db.sessions() as session:
                for n in range(start, min(count, start + BATCH)):
                    inside = n % 2 == 0
                    openid = new_openid()
                    expected[openid] = "chat" if inside else "template"
                    patient = Patient(display_name=f"患者{n}")
                    session.add(patient)
                    await session.flush()
                    identity = WeChatIdentity(
                        app_id=appid,
                        openid=openid,
                        patient_id=patient.id,
                        subscribed=True,
                        last_inbound_at=now - (timedelta(hours=1) if inside else timedelta(days=5)),
                    )
                    session.add(identity)
                    await session.flush()
                    session.add(
                        ConsentRecord(
                            identity_id=identity.id, patient_id=patient.id, granted=True, notice_version="b"
                        )
                    )
                    await enrol(
                        session,
                        EnrolmentRequest(
                            patient_id=patient.id,
                            plan_version_id=version_id,
                            anchor_date=local.date() - timedelta(days=1),
                            discharged_on=local.date() - timedelta(days=1),
                            team_id=team_id,
                            source=EnrolmentSource.console,
                        ),
                        settings,
                        due - timedelta(minutes=1),
                    )
                await session.commit()
        async with db.engine.begin() as conn:
            # Day 1 of every enrolment due at 09:00 (the plan says 10:00); the later ones stay later.
            await conn.execute(sa.update(FollowupCheckin).where(FollowupCheckin.day == 1).values(due_at=due))
    finally:
        await db.dispose()
    return expected


async def progress(database_url: str) -> tuple[int, int, int, datetime | None]:
    """(patients whose check-in's first question went out in chat, patients invited by a template
    message, patients sent more than one template, when the last of those sends went). Each seeded
    patient has one check-in due, so a patient stands for their check-in."""
    db = Database(database_url)
    try:
        async with db.engine.connect() as conn:
            row = (
                await conn.execute(
                    sa.text(
                        "with firsts as ("
                        " select c.identity_id, m.msg_type = 'template' as template, m.sent_at"
                        " from messages m join conversations c on c.id = m.conversation_id"
                        " left join inbound_messages i on i.id = m.reply_to_inbound_id"
                        " where m.delivery_status = 'sent' and m.direction = 'out'"
                        " and (m.msg_type = 'template'"
                        "      or i.dedupe_key like 'dialogue:followup:checkin:%')),"
                        " per as (select identity_id, bool_or(not template) as chat,"
                        "  count(*) filter (where template) as templates, min(sent_at) as first"
                        "  from firsts group by identity_id)"
                        " select count(*) filter (where chat), count(*) filter (where not chat),"
                        "  count(*) filter (where templates > 1), max(first) from per"
                    )
                )
            ).one()
    finally:
        await db.dispose()
    return int(row[0]), int(row[1]), int(row[2]), row[3]


def cpu_seconds(process: Process | None) -> float:
    """CPU time (user + system) of the process group a stack process leads (its children too)."""
    if process is None or process.popen is None:
        return 0.0
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == process.popen.pid:  # the process group (start_new_session)
            total += int(fields[11]) + int(fields[12])
    return total / tick


def postgres_cpu_seconds() -> float:
    """CPU time of every PostgreSQL process (the server and its backends) still running."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            head, rest = stat.read_text().rsplit(")", 1)
        except OSError:
            continue
        if head.endswith("(postgres"):
            fields = rest.split()
            total += int(fields[11]) + int(fields[12])
    return total / tick


def machine_jiffies() -> tuple[int, int]:
    """(busy, total) CPU jiffies of the whole machine since boot (/proc/stat)."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


def by_minute(timed: list[tuple[float, float]], start: float) -> list[dict[str, float]]:
    """Acknowledgement p50/p99/max for each minute of the run (where the slow ones were)."""
    minutes: dict[int, list[float]] = {}
    for at, latency in timed:
        minutes.setdefault(int((at - start) // 60), []).append(latency)
    rows = []
    for minute, values in sorted(minutes.items()):
        ordered = sorted(values)
        rows.append(
            {
                "minute": minute,
                "n": len(ordered),
                "p50_ms": round(1000 * ordered[len(ordered) // 2], 1),
                "p99_ms": round(1000 * ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 1),
                "max_ms": round(1000 * ordered[-1], 1),
            }
        )
    return rows


async def ack_load(
    stack: Stack, rate: float, stop: asyncio.Event, timed: list[tuple[float, float]] | None = None
) -> list[float]:
    """Pushes from 200 other patients at `rate`/s, each timed from its scheduled moment (and, in
    `timed`, with that moment)."""
    openids = [new_openid() for _ in range(200)]
    latencies: list[float] = []
    url = f"{stack.url}/wechat/oa"
    async with aiohttp.ClientSession() as client:

        async def post(n: int, at: float) -> None:
            push = stack.build("text", openids[n % len(openids)], content=f"你好 {n}")
            await asyncio.sleep(max(0.0, at - time.perf_counter()))
            async with client.post(url, params=push.params, data=push.body, headers=push.headers) as response:
                assert (await response.text()) == "success"
            latencies.append(time.perf_counter() - at)
            if timed is not None:
                timed.append((at, latencies[-1]))

        tasks = []
        start = time.perf_counter()
        n = 0
        while not stop.is_set():
            at = start + n / rate
            tasks.append(asyncio.create_task(post(n, at)))
            n += 1
            await asyncio.sleep(max(0.0, at - time.perf_counter()))
        await asyncio.gather(*tasks)
    return latencies


async def run(args: argparse.Namespace) -> dict[str, object]:
    port = free_port()
    # The action server asks this stack's bot API for each check-in's questions.
    rasa = start_rasa(_fresh_redis("rasa"), crm_url=f"http://127.0.0.1:{port}")
    wechat = start_fake_wechat()
    database_url = await _fresh_postgres()
    stack = Stack(
        "bench-followup",
        database_url,
        _fresh_redis("postgresql"),
        rasa,
        wechat,
        port,
        extra_env={
            **default_timings(),
            "FOLLOWUP_TEMPLATE_ID": TEMPLATE_ID,
            "FOLLOWUP_INTERVAL_SECONDS": "5",
            # The bench runs at any hour: the send hours are the whole day.
            "FOLLOWUP_SEND_FROM": "00:00",
            "FOLLOWUP_SEND_UNTIL": "23:59",
        },
    )
    try:
        stack.migrate()
        stack.start_web()
        now = datetime.now(UTC)
        t_seed = time.perf_counter()
        expected = await seed(database_url, Settings().oa_appid, args.checkins, now)
        seeded_in = time.perf_counter() - t_seed
        stop = asyncio.Event()
        timed: list[tuple[float, float]] = []
        acks = asyncio.create_task(ack_load(stack, args.ack_rate, stop, timed))
        t0 = time.time()
        t0_perf = time.perf_counter()
        load_before = os.getloadavg()
        postgres_cpu = postgres_cpu_seconds()
        jiffies = machine_jiffies()
        rasa_cpu = cpu_seconds(rasa.rasa), cpu_seconds(rasa.actions)
        web_cpu = cpu_seconds(stack.web)
        stack.start_worker()
        stack.start_extra_worker()
        chat = templates = template_twice = 0
        last: datetime | None = None
        while time.time() - t0 < args.timeout:
            chat, templates, template_twice, last = await progress(database_url)
            if chat + templates >= len(expected):
                break
            await asyncio.sleep(2)
        elapsed = time.time() - t0
        load_after = os.getloadavg()
        rasa_cpu = cpu_seconds(rasa.rasa) - rasa_cpu[0], cpu_seconds(rasa.actions) - rasa_cpu[1]
        web_cpu = cpu_seconds(stack.web) - web_cpu
        workers_cpu = sum(cpu_seconds(p) for p in [stack.worker, *stack.extra_workers])
        postgres_cpu = postgres_cpu_seconds() - postgres_cpu
        busy, total = (after - before for after, before in zip(machine_jiffies(), jiffies, strict=True))
        stop.set()
        latencies = await acks
        sends = wechat.sent()
        per_openid: dict[str, list[dict[str, object]]] = {}
        for item in sends:
            if item.get("touser") in expected:
                per_openid.setdefault(str(item["touser"]), []).append(item)
        # The database's record and the fake WeChat API's should agree; the larger is reported.
        template_twice = max(
            template_twice,
            sum(
                1
                for items in per_openid.values()
                if sum(1 for i in items if i.get("api") == "template_send") > 1
            ),
        )
        chat_counts = sorted(len(items) for openid, items in per_openid.items() if expected[openid] == "chat")
        typical = chat_counts[len(chat_counts) // 2] if chat_counts else 0
        return {
            "checkins": len(expected),
            "seeded_in_s": round(seeded_in, 1),
            "started_in_chat": chat,
            "invited_by_template": templates,
            "all_started": chat + templates >= len(expected),
            "last_start_after_s": round(last.timestamp() - t0, 1) if last else None,
            "duplicated_templates": template_twice,
            "chat_sends_per_patient_typical": typical,
            "chat_patients_with_more_sends_than_typical": sum(1 for c in chat_counts if c > typical),
            "ack_during_run": summary(latencies) if latencies else None,
            # CPU seconds over the run (workers' start to the last start), and Rasa's per chat start:
            # the check-ins are the only turns Rasa has (the other patients have not consented).
            "cpu_s": {
                "rasa": round(rasa_cpu[0], 1),
                "actions": round(rasa_cpu[1], 1),
                "workers": round(workers_cpu, 1),
                "web": round(web_cpu, 1),
                "postgres": round(postgres_cpu, 1),
                "run": round(elapsed, 1),
            },
            # Of both cores over the run: how much of the machine was in use.
            "machine_busy_share": round(busy / total, 2) if total else None,
            "ack_by_minute": by_minute(timed, t0_perf),
            "rasa_cpu_ms_per_chat_start": round(1000 * rasa_cpu[0] / chat, 1) if chat else None,
            "actions_cpu_ms_per_chat_start": round(1000 * rasa_cpu[1] / chat, 1) if chat else None,
            "load_average_before_after": [round(load_before[0], 2), round(load_after[0], 2)],
        }
    finally:
        stack.stop()
        wechat.process.stop()
        rasa.stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--checkins", type=int, default=10_000)
    parser.add_argument("--ack-rate", type=float, default=20.0)
    parser.add_argument("--timeout", type=float, default=900.0)
    print(json.dumps(asyncio.run(run(parser.parse_args())), ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
