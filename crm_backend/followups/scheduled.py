"""Follow-up's periodic job: start due check-ins, remind, close answer windows (dispatch.py)."""

from __future__ import annotations

from channels.outbound.delivery import Outbox
from crm_backend.config import Settings
from crm_backend.followups.dispatch import run_followups
from crm_backend.runtime import Runtime
from crm_backend.scheduling import Job


async def _dispatch(runtime: Runtime) -> None:
    await run_followups(Outbox(runtime))


def _dispatch_every(settings: Settings) -> float:
    return settings.followup_interval_seconds


JOBS = [Job("followup-dispatch", _dispatch, _dispatch_every)]
