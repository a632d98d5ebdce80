"""Which patients a staff member may open: the one rule behind every patient endpoint.

The rule itself (`visible_to`, `may_view`) is in `crm_backend/escalations/access.py`, because the
conversation view needs it too (a chat that was never escalated is read under it) and escalations
sit below this package.
"""

from __future__ import annotations

from crm_backend.escalations.access import may_view, viewable, visible_to

__all__ = ["may_view", "viewable", "visible_to"]
