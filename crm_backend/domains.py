"""The composition root of the domains: which exist, what each subscribes to and which jobs it runs.

Domains never import each other upwards (docs/ARCHITECTURE.md, "Dependency rules"): a domain that
must react to another subscribes to its events in `listeners.py`, and a domain's periodic work is a
`JOBS` list in its `scheduled.py`. Both processes start from here: the web app subscribes the
listeners, the worker subscribes them too and runs every job.
"""

from __future__ import annotations

from collections.abc import Callable

from channels.outbound import scheduled as outbound_jobs
from crm_backend.appointments import listeners as appointment_listeners
from crm_backend.appointments import scheduled as appointment_jobs
from crm_backend.complaints import scheduled as complaint_jobs
from crm_backend.conversations import scheduled as conversation_jobs
from crm_backend.escalations import listeners as escalation_listeners
from crm_backend.escalations import scheduled as escalation_jobs
from crm_backend.followups import listeners as followup_listeners
from crm_backend.followups import scheduled as followup_jobs
from crm_backend.runtime import Runtime
from crm_backend.scheduling import Job

#: Each domain's `subscribe(runtime)`, in the order handlers should run for a shared event type.
LISTENERS: list[Callable[[Runtime], None]] = [
    escalation_listeners.subscribe,
    appointment_listeners.subscribe,
    followup_listeners.subscribe,
]

#: Each domain's scheduled jobs.
SCHEDULED: list[list[Job]] = [
    conversation_jobs.JOBS,
    outbound_jobs.JOBS,
    escalation_jobs.JOBS,
    appointment_jobs.JOBS,
    followup_jobs.JOBS,
    complaint_jobs.JOBS,
]


def subscribe_listeners(runtime: Runtime) -> None:
    """Once per process, at start: every domain's handlers on `runtime.events`."""
    for subscribe in LISTENERS:
        subscribe(runtime)


def jobs() -> list[Job]:
    """Every domain's jobs; ids are unique (they name the job in the scheduler and the log)."""
    collected = [job for domain_jobs in SCHEDULED for job in domain_jobs]
    ids = [job.id for job in collected]
    duplicates = sorted({job_id for job_id in ids if ids.count(job_id) > 1})
    if duplicates:
        raise RuntimeError(f"scheduled job ids used twice: {duplicates}")
    return collected
