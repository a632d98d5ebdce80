"""Conversations' periodic jobs; the worker runs them (crm_backend/domains.py collects them)."""

from __future__ import annotations

from crm_backend.config import Settings
from crm_backend.conversations.sweeper import requeue_stale_work
from crm_backend.runtime import Runtime
from crm_backend.scheduling import Job


async def _sweep(runtime: Runtime) -> None:
    await requeue_stale_work(runtime)


def _sweep_every(settings: Settings) -> float:
    return settings.sweeper_interval_seconds


JOBS = [Job("sweeper", _sweep, _sweep_every)]
