"""The composition root: every domain's jobs keep their ids and intervals, and each cross-domain
event has its listener once the process subscribed them."""

from __future__ import annotations

from channels.outbound.delivery import Outbox
from channels.outbound.events import DeliveryRecorded
from crm_backend import domains
from crm_backend.config import Settings
from crm_backend.conversations.events import EscalationRequested, PatientMessageForStaff, ServiceRated
from crm_backend.runtime import Runtime


def _settings() -> Settings:
    return Settings(
        WECHAT_OA_APPID="",
        DATABASE_URL="sqlite+aiosqlite:///:memory:",
        SWEEPER_INTERVAL_SECONDS=7,
        CONSOLE_GONE_AFTER_SECONDS=40,
        REMINDER_INTERVAL_SECONDS=120,
        FOLLOWUP_INTERVAL_SECONDS=45,
        COMPLAINT_INTERVAL_SECONDS=240,
    )


def test_jobs_keep_their_ids_and_intervals() -> None:
    settings = _settings()
    jobs = {job.id: job for job in domains.jobs()}
    assert {job_id: job.every(settings) for job_id, job in jobs.items()} == {
        "sweeper": 7,
        "token-refresher": 60,
        "presence": 20,
        "auto-assign": 5,
        "appointment-reminders": 120,
        "followup-dispatch": 45,
        "complaint-deadlines": 240,
    }
    assert [job_id for job_id, job in jobs.items() if job.at_start] == ["token-refresher"]
    # Presence is checked at least every 30 s, however long the grace period.
    assert jobs["presence"].every(_settings().model_copy(update={"console_gone_after_seconds": 600})) == 30


async def test_listeners_subscribe_every_cross_domain_event() -> None:
    runtime = Runtime.create(_settings())
    try:
        events = (DeliveryRecorded, EscalationRequested, PatientMessageForStaff, ServiceRated)
        assert not any(runtime.events.subscribed(event) for event in events)
        domains.subscribe_listeners(runtime)
        assert all(runtime.events.subscribed(event) for event in events)
    finally:
        await runtime.close()


async def test_the_outbox_announces_deliveries_on_the_bus() -> None:
    runtime = Runtime.create(_settings())
    heard: list[DeliveryRecorded] = []

    async def record(event: DeliveryRecorded) -> None:
        heard.append(event)

    try:
        runtime.events.subscribe(DeliveryRecorded, record)
        await Outbox(runtime).announce_delivery(41, 7)
        assert heard == [DeliveryRecorded(message_id=41, conversation_id=7)]
    finally:
        await runtime.close()
