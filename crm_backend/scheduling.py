"""Periodic jobs that a domain owns and the worker only runs.

A domain lists its jobs in its `scheduled.py` as `JOBS`; `crm_backend/domains.py` collects them and
the worker adds each to its scheduler. A job gets the process's Runtime and builds what it needs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from crm_backend.config import Settings
    from crm_backend.runtime import Runtime


@dataclass(frozen=True)
class Job:
    #: The scheduler's job id, also in the worker's log.
    id: str
    run: Callable[[Runtime], Awaitable[None]]
    #: Seconds between runs, read from settings when the worker starts.
    every: Callable[[Settings], float]
    #: Also run once as the worker starts, beside its consumers (a failure there is logged, not fatal).
    at_start: bool = False
    #: What that first run calls instead of `run`, e.g. one that waits for a peer starting beside the worker.
    first_run: Callable[[Runtime], Awaitable[None]] | None = None
