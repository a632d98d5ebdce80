"""A worker's consumer that dies is logged and started again, and the heartbeat pauses meanwhile."""

from __future__ import annotations

import asyncio
import logging

import pytest

from crm_backend.worker import main as worker


class DiesOnce:
    """A queue whose consumer crashes on its first run (the worker's own bug, say), then runs."""

    def __init__(self, stop: asyncio.Event, seen_down: list[set[str]], stopped: set[str]) -> None:
        self.runs = 0
        self.stop, self.seen_down, self.stopped = stop, seen_down, stopped

    async def consume(self, consumer: str, handler: object, stop: asyncio.Event) -> None:
        self.runs += 1
        if self.runs == 1:
            raise RuntimeError("consumer crashed")
        self.seen_down.append(set(self.stopped))
        self.stop.set()


async def test_a_dead_consumer_is_restarted_and_reported_while_down(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(worker, "RESTART_AFTER_SECONDS", 0.05)
    stop, stopped, seen_down = asyncio.Event(), set[str](), list[set[str]]()
    queue = DiesOnce(stop, seen_down, stopped)
    task = asyncio.create_task(worker.supervised("w-in0", queue, None, stop, stopped))  # type: ignore[arg-type]
    await asyncio.sleep(0.01)
    assert stopped == {"w-in0"}  # down: the heartbeat stays silent
    await asyncio.wait_for(task, 5)
    assert queue.runs == 2 and seen_down == [set()] and stopped == set()
    assert any(
        "w-in0 stopped unexpectedly" in r.getMessage() for r in caplog.records if r.levelno == logging.ERROR
    )
