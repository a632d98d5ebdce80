"""What the outbox tells other domains. It imports none of them: they subscribe (listeners.py)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DeliveryRecorded:
    """How sending a staff or system message ended (sent, failed, undeliverable) is now stored.

    Escalations show it in the console, where a 48-hour window refusal must reach the agent."""

    message_id: int
    conversation_id: int
