"""The composition root of the domains: who listens to whom, and which jobs the worker runs.

Web app and worker call `wire(runtime)` once at start-up, before handling anything.
"""

from __future__ import annotations

from crm_backend.runtime import Runtime


def wire(runtime: Runtime) -> None:
    """Subscribe every domain's listeners to this process's events."""
    from crm_backend.escalations import listeners as escalations

    escalations.subscribe(runtime)
