"""The worker process: queue consumers plus the scheduler (its heartbeat and every domain's jobs)."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket

import uvloop
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from channels.outbound.delivery import Outbox
from crm_backend import domains, heartbeat
from crm_backend.config import get_settings
from crm_backend.conversations.processing import InboundProcessor
from crm_backend.logs import configure_logging
from crm_backend.queue.streams import Handler, StreamQueue
from crm_backend.runtime import Runtime, freeze_startup_objects
from crm_backend.scheduling import Job

log = logging.getLogger("carebridge.worker")

#: A consumer that died waits this long before it starts again (it may die of the same cause).
RESTART_AFTER_SECONDS = 1.0


async def run_worker(stop: asyncio.Event) -> None:
    settings = get_settings()
    runtime = Runtime.create(settings)
    domains.subscribe_listeners(runtime)
    processor = InboundProcessor(runtime)
    outbox = Outbox(runtime)
    worker_id = f"{socket.gethostname()}-{os.getpid()}"

    async def handle_inbound(fields: dict[str, str]) -> None:
        async with outbox.delivering_to(fields["openid"]) as deliver:
            await processor.process_patient(fields["app_id"], fields["openid"], deliver)

    async def handle_outbound(fields: dict[str, str]) -> None:
        await outbox.deliver_conversation(int(fields["conversation_id"]))

    #: Consumers that died and are waiting to start again.
    stopped: set[str] = set()

    async def beat() -> None:
        if stopped:
            log.warning("no heartbeat while consumers %s are down", sorted(stopped))
            return
        await heartbeat.beat(runtime.redis, settings, worker_id)

    scheduler = AsyncIOScheduler(timezone="Asia/Shanghai")
    scheduler.add_job(
        beat,
        "interval",
        seconds=heartbeat.HEARTBEAT_EVERY_SECONDS,
        id="heartbeat",
        max_instances=1,
        coalesce=True,
    )
    jobs = domains.jobs()
    for job in jobs:
        scheduler.add_job(
            job.run,
            "interval",
            seconds=job.every(settings),
            args=[runtime],
            id=job.id,
            max_instances=1,
            coalesce=True,
        )

    await runtime.inbound.ensure_group()
    await runtime.outbound.ensure_group()
    await heartbeat.beat(runtime.redis, settings, worker_id)
    first_runs = [asyncio.create_task(run_at_start(job, runtime)) for job in jobs if job.at_start]
    scheduler.start()
    freeze_startup_objects()
    consumers = [
        asyncio.create_task(supervised(f"{worker_id}-in{i}", runtime.inbound, handle_inbound, stop, stopped))
        for i in range(settings.worker_concurrency)
    ] + [
        asyncio.create_task(
            supervised(f"{worker_id}-out{i}", runtime.outbound, handle_outbound, stop, stopped)
        )
        for i in range(settings.worker_concurrency)
    ]
    log.info("worker %s started (%s consumers per stream)", worker_id, settings.worker_concurrency)
    try:
        await stop.wait()
    finally:
        scheduler.shutdown(wait=False)
        for task in consumers + first_runs:
            task.cancel()
        await asyncio.gather(*consumers, *first_runs, return_exceptions=True)
        await heartbeat.leave(runtime.redis, settings, worker_id)
        await runtime.close()
        log.info("worker %s stopped", worker_id)


async def run_at_start(job: Job, runtime: Runtime) -> None:
    """A job's first run, beside the consumers: it may wait for a peer (the sandbox starts with the
    web process), and delivery refreshes the token on demand anyway, so a slow start is no stop."""
    try:
        await (job.first_run or job.run)(runtime)
    except Exception as exc:
        log.warning("%s at start failed: %s", job.id, exc)


async def supervised(
    name: str, queue: StreamQueue, handler: Handler, stop: asyncio.Event, stopped: set[str]
) -> None:
    """Run one consumer until `stop`; one that dies unexpectedly is logged and started again.
    While it is down its name is in `stopped`, and the worker's heartbeat (what /healthz reads)
    stays silent."""
    while not stop.is_set():
        try:
            await queue.consume(name, handler, stop)
            return
        except Exception:
            stopped.add(name)
            log.exception("consumer %s stopped unexpectedly; starting it again", name)
            await asyncio.sleep(RESTART_AFTER_SECONDS)
            stopped.discard(name)


def main() -> None:
    configure_logging(get_settings().log_level)
    stop = asyncio.Event()

    async def runner() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await run_worker(stop)

    uvloop.run(runner())


if __name__ == "__main__":
    main()
