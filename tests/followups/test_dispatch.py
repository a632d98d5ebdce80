"""The follow-up dispatch job against the real fake WeChat API: each due check-in starts exactly once
with two workers racing and after a crash, never at night, by template with the questionnaire link
outside the 48-hour window, waiting for the patient without a template; reminders, postponed
starts, missed check-ins, lost to follow-up and completion. What Rasa asks is tested with the
check-in dialogue end to end."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from channels.outbound.delivery import Outbox
from crm_backend.conversations import turns
from crm_backend.conversations.bot_gateway import OpenForm
from crm_backend.conversations.events import DialogueSettled
from crm_backend.conversations.models import (
    Conversation,
    ConversationStatus,
    InboundMessage,
)
from crm_backend.conversations.service import current_conversation
from crm_backend.conversations.turns import DialogueRequest
from crm_backend.followups import dispatch
from crm_backend.followups.dispatch import _start_safely, claim_timeout, run_followups
from crm_backend.followups.enrolment import pause_enrolment, stop_enrolment
from crm_backend.followups.links import PAGE_PATH, read_checkin_token
from crm_backend.followups.models import FollowupCheckin, FollowupSend, StopReason
from crm_backend.patients.models import WeChatIdentity
from crm_backend.runtime import Runtime
from tests.appointments.test_reminders import worker_outbox, worker_turns
from tests.followups.conftest import TEMPLATE_ID
from tests.followups.enrolment_support import (
    checkins,
    definition,
    dialogues,
    enrol_patient,
    enrolment,
    fresh_day,
    identity,
    local,
    make_patient,
    make_plan,
    sends,
    started_in_chat,
    unique_code,
)
from tests.support.postgres import alembic
from tests.support.refused import store_refused_answer
from tests.support.stack import FakeWeChat


def _opens(runtime: Runtime, url: str) -> int:
    """The check-in a template's link opens: signed for that one check-in (links.py)."""
    assert url.startswith(f"{runtime.settings.public_base_url.rstrip('/')}{PAGE_PATH}")
    return read_checkin_token(runtime.settings, url.rsplit("/", 1)[1])


async def _set(runtime: Runtime, checkin_id: int, **values: object) -> None:
    async with runtime.db.sessions() as session:
        await session.execute(
            sa.update(FollowupCheckin).where(FollowupCheckin.id == checkin_id).values(**values)
        )
        await session.commit()


async def test_two_workers_racing_start_each_check_in_once(
    runtime: Runtime, database_url: str, fake_wechat: FakeWeChat
):
    day = fresh_day()
    version = await make_plan(runtime, definition(unique_code(), days=(1, 3)))
    now = local(day + timedelta(days=1), 10, 1)
    enrolled = []
    for n in range(8):
        inside = now - timedelta(hours=2 if n % 2 else 50)
        patient_id, identity_id = await make_patient(runtime, last_inbound_at=inside, family=n % 3 == 0)
        enrolled.append((await enrol_patient(runtime, version, patient_id, day, local(day, 15)), identity_id))

    async with (
        worker_outbox(database_url, fake_wechat, FOLLOWUP_TEMPLATE_ID=TEMPLATE_ID) as first,
        worker_outbox(database_url, fake_wechat, FOLLOWUP_TEMPLATE_ID=TEMPLATE_ID) as second,
    ):
        await asyncio.gather(
            run_followups(first, now),
            run_followups(second, now),
            run_followups(first, now + timedelta(seconds=1)),
        )
        for enrolment_id, identity_id in enrolled:
            day1, day3 = await checkins(runtime, enrolment_id)
            assert (day1.status, day1.claims, day1.identity_id) == ("started", 1, identity_id)
            assert day3.status == "scheduled"
            assert len(await dialogues(runtime, day1.id)) == 1
            [send] = await sends(runtime, day1.id)
            assert send.kind == ("start_chat" if day1.started_via == "chat" else "template")
        # Outside the window the invitation goes out once, whichever worker takes the patient's queue.
        for enrolment_id, identity_id in enrolled[::2]:
            holder = await identity(runtime, identity_id)
            await asyncio.gather(worker_turns(first, holder, now), worker_turns(second, holder, now))
            [sent] = fake_wechat.sent(holder.openid)
            assert sent["api"] == "template_send"
            day1 = (await checkins(runtime, enrolment_id))[0]
            [send] = await sends(runtime, day1.id)
            assert (send.kind, send.status, day1.started_via) == ("template", "sent", "template")


async def test_a_paced_run_that_lasts_longer_than_the_claim_timeout_keeps_its_claims(
    runtime: Runtime, database_url: str, fake_wechat: FakeWeChat
):
    """A paced run lasts minutes at a morning's volume. Its claims carry the moment each was made,
    not the run's start, or another worker's run would take over starts still waiting for their
    place (each takeover counts towards the tries before the phone list)."""
    day = fresh_day()
    version = await make_plan(runtime, definition(unique_code(), days=(1, 3)))
    base = local(day + timedelta(days=1), 10)
    enrolled = []
    for _ in range(25):
        patient_id, _ = await make_patient(runtime, last_inbound_at=base - timedelta(hours=1))
        enrolled.append(await enrol_patient(runtime, version, patient_id, day, local(day, 15)))
    # 5 starts a second: 25 take 5 s, longer than the 3 s after which a claim counts as stale.
    paced = {"FOLLOWUP_STARTS_PER_MINUTE": "300", "FOLLOWUP_CLAIM_TIMEOUT_SECONDS": "3"}
    async with (
        worker_outbox(database_url, fake_wechat, FOLLOWUP_TEMPLATE_ID=TEMPLATE_ID, **paced) as first,
        worker_outbox(database_url, fake_wechat, FOLLOWUP_TEMPLATE_ID=TEMPLATE_ID, **paced) as second,
    ):
        began = time.monotonic()
        long_run = asyncio.create_task(run_followups(first, base))
        # A second worker (restarted, say) runs from the fourth second on, on the same clock, while
        # the first worker's run still has claims waiting for their place.
        await asyncio.sleep(3.5)
        while not long_run.done():
            await run_followups(second, base + timedelta(seconds=time.monotonic() - began))
            await asyncio.sleep(0.3)
        await long_run
    for enrolment_id in enrolled:
        day1 = (await checkins(runtime, enrolment_id))[0]
        assert (day1.status, day1.claims) == ("started", 1)
        assert len(await dialogues(runtime, day1.id)) == 1


async def test_a_crashed_worker_s_claim_is_taken_over_once(runtime: Runtime, outbox: Outbox):
    day = fresh_day()
    version = await make_plan(runtime, definition(unique_code(), days=(1, 3)))
    now = local(day + timedelta(days=1), 11)
    timeout = claim_timeout(outbox.runtime.settings)
    patient_a, _ = await make_patient(runtime, last_inbound_at=now - timedelta(hours=1))
    patient_b, _ = await make_patient(runtime, last_inbound_at=now - timedelta(hours=1))
    crashed_before = (
        await checkins(runtime, await enrol_patient(runtime, version, patient_a, day, local(day, 15)))
    )[0]
    # A worker claimed A's check-in and died before queuing anything.
    await _set(runtime, crashed_before.id, status="claimed", claimed_at=now - timeout / 2, claims=1)
    # Another claimed B's, queued its dialogue and died before recording the start.
    enrolment_b = await enrol_patient(runtime, version, patient_b, day, local(day, 15))
    crashed_after = (await checkins(runtime, enrolment_b))[0]
    await run_followups(outbox, now)
    [turn] = await dialogues(runtime, crashed_after.id)
    await _set(runtime, crashed_after.id, status="claimed", claimed_at=now, started_at=None)
    async with runtime.db.sessions() as session:
        await session.execute(sa.delete(FollowupSend).where(FollowupSend.checkin_id == crashed_after.id))
        await session.commit()

    await run_followups(outbox, now + timeout / 4)  # live workers' claims: left alone
    assert (await _checkin(runtime, crashed_after.id)).status == "claimed"
    assert (await _checkin(runtime, crashed_before.id)).status == "claimed"
    assert await dialogues(runtime, crashed_before.id) == []

    await asyncio.gather(  # stale: each taken over by one of two runs
        run_followups(outbox, now + timeout * 2), run_followups(outbox, now + timeout * 2)
    )
    for checkin_id in (crashed_before.id, crashed_after.id):
        checkin = await _checkin(runtime, checkin_id)
        assert checkin.status == "started" and checkin.claims == 2
        assert len(await dialogues(runtime, checkin_id)) == 1
        assert len(await sends(runtime, checkin_id)) == 1
    assert [t.id for t in await dialogues(runtime, crashed_after.id)] == [turn.id]


async def test_a_claim_is_taken_over_after_the_configured_seconds_and_a_late_start_adds_nothing(
    runtime: Runtime, database_url: str, fake_wechat: FakeWeChat
):
    """FOLLOWUP_CLAIM_TIMEOUT_SECONDS, not minutes, decides when a dead worker's claim is taken over;
    the dead-slow worker's start, coming after the takeover, makes no second dialogue or send."""
    day = fresh_day()
    version = await make_plan(runtime, definition(unique_code(), days=(1, 3)))
    now = local(day + timedelta(days=1), 11)
    patient_id, _ = await make_patient(runtime, last_inbound_at=now - timedelta(hours=1))
    checkin = (
        await checkins(runtime, await enrol_patient(runtime, version, patient_id, day, local(day, 15)))
    )[0]
    async with (
        worker_outbox(database_url, fake_wechat, FOLLOWUP_CLAIM_TIMEOUT_SECONDS=5) as slow,
        worker_outbox(database_url, fake_wechat, FOLLOWUP_CLAIM_TIMEOUT_SECONDS=5) as other,
    ):
        # The slow worker claimed it at `now`; six seconds on, the other takes it over...
        await _set(runtime, checkin.id, status="claimed", claimed_at=now, claims=1)
        await run_followups(other, now + timedelta(seconds=4))
        assert (await _checkin(runtime, checkin.id)).status == "claimed"
        await run_followups(other, now + timedelta(seconds=6))
        assert (await _checkin(runtime, checkin.id)).status == "started"
        # ... and the slow worker's start, finishing after the takeover, adds nothing.
        assert await _start_safely(slow, checkin.id, now) == "started"
    started = await _checkin(runtime, checkin.id)
    assert (started.status, started.claims) == ("started", 2)
    assert len(await dialogues(runtime, checkin.id)) == 1
    assert len(await sends(runtime, checkin.id)) == 1


async def _checkin(runtime: Runtime, checkin_id: int) -> FollowupCheckin:
    async with runtime.db.sessions() as session:
        checkin = await session.get(FollowupCheckin, checkin_id)
        assert checkin is not None
        return checkin


async def test_never_at_night(runtime: Runtime, outbox: Outbox, fake_wechat: FakeWeChat):
    day = fresh_day()
    version = await make_plan(runtime, definition(unique_code(), days=(1, 3), hour=7))
    patient_id, identity_id = await make_patient(runtime, last_inbound_at=local(day, 12))
    enrolment_id = await enrol_patient(runtime, version, patient_id, day, local(day, 15))
    tomorrow = day + timedelta(days=1)
    for night in (local(tomorrow, 7), local(tomorrow, 8, 59), local(day, 20), local(day, 23, 30)):
        await run_followups(outbox, night)
    day1 = (await checkins(runtime, enrolment_id))[0]
    assert (day1.status, day1.claims) == ("scheduled", 0)
    assert await dialogues(runtime, day1.id) == []

    await run_followups(outbox, local(tomorrow, 9))
    day1 = (await checkins(runtime, enrolment_id))[0]
    assert day1.status == "started" and len(await dialogues(runtime, day1.id)) == 1
    assert fake_wechat.sent((await identity(runtime, identity_id)).openid) == []


async def test_a_check_in_freed_after_the_sending_hours_waits_for_the_morning(
    runtime: Runtime, outbox: Outbox, fake_wechat: FakeWeChat
):
    """Started in chat at 19:59, but the worker reaches it only at 20:30 (a backlog, or staff held
    the chat until then): it waits in the route, nothing goes out at night, and it may start at
    09:00 the next morning."""
    day = fresh_day()
    version = await make_plan(runtime, definition(unique_code(), days=(1, 3)))
    tomorrow = day + timedelta(days=1)
    evening = local(tomorrow, 19, 59)
    patient_id, identity_id = await make_patient(runtime, last_inbound_at=evening - timedelta(hours=1))
    enrolment_id = await enrol_patient(runtime, version, patient_id, day, local(day, 15))
    await run_followups(outbox, evening)
    holder = await identity(runtime, identity_id)
    [turn] = await dialogues(runtime, (await checkins(runtime, enrolment_id))[0].id)

    next_day = tomorrow + timedelta(days=1)
    for night in (local(tomorrow, 20, 30), local(tomorrow, 23, 50), local(next_day, 8, 59)):
        await worker_turns(outbox, holder, night)
        assert (await turns.plan_dialogue(runtime, turn.id, night)).step is turns.Step.WAIT
    assert fake_wechat.sent(holder.openid) == []
    [turn] = await dialogues(runtime, (await checkins(runtime, enrolment_id))[0].id)
    assert turn.status == "received"

    morning = await turns.plan_dialogue(runtime, turn.id, local(next_day, 9, 0))
    assert morning.step is turns.Step.TRIGGER


async def test_outside_the_window_a_template_with_the_questionnaire_link(
    runtime: Runtime, outbox: Outbox, fake_wechat: FakeWeChat
):
    """A daughter manages her father's account entries (就诊人): she is invited, about him by name."""
    day = fresh_day()
    version = await make_plan(runtime, definition(unique_code(), days=(1, 3)))
    now = local(day + timedelta(days=1), 10, 30)
    patient_id, identity_id = await make_patient(
        runtime, name="王建国", family=True, last_inbound_at=now - timedelta(days=5)
    )
    enrolment_id = await enrol_patient(runtime, version, patient_id, day, local(day, 15))

    await run_followups(outbox, now)
    daughter = await identity(runtime, identity_id)
    await worker_turns(outbox, daughter, now + timedelta(seconds=5))

    day1 = (await checkins(runtime, enrolment_id))[0]
    [sent] = fake_wechat.sent(daughter.openid)
    assert sent["api"] == "template_send" and sent["template_id"] == TEMPLATE_ID
    assert _opens(runtime, sent["url"]) == day1.id
    data = {key: value["value"] for key, value in sent["data"].items()}
    assert data["first"].startswith("您好，您的家人王建国出院后第1天的随访到了")
    assert data["keyword1"] == "王建国"
    assert data["keyword3"] == f"{(day + timedelta(days=1)).month}月{(day + timedelta(days=1)).day}日"
    assert (day1.status, day1.started_via, day1.identity_id) == ("started", "template", identity_id)
    [send] = await sends(runtime, day1.id)
    assert (send.kind, send.status, send.identity_id) == ("template", "sent", identity_id)
    assert send.message_id is not None


async def test_an_invitation_goes_out_in_the_dispatch_run_not_behind_chat_starts(
    runtime: Runtime, outbox: Outbox, fake_wechat: FakeWeChat
):
    """Chat starts wait in the inbound stream for a worker and Rasa (none runs here); the invitation
    outside the window does not wait behind them: it has gone out when the run returns, once."""
    day = fresh_day()
    version = await make_plan(runtime, definition(unique_code(), days=(1, 3)))
    now = local(day + timedelta(days=1), 10, 30)
    chatting = []
    for _ in range(3):
        patient_id, identity_id = await make_patient(runtime, last_inbound_at=now - timedelta(hours=1))
        chatting.append((await enrol_patient(runtime, version, patient_id, day, local(day, 15)), identity_id))
    patient_id, identity_id = await make_patient(runtime, last_inbound_at=now - timedelta(days=5))
    invited = await enrol_patient(runtime, version, patient_id, day, local(day, 15))

    await run_followups(outbox, now)
    await run_followups(outbox, now + timedelta(seconds=5))

    holder = await identity(runtime, identity_id)
    [sent] = fake_wechat.sent(holder.openid)
    day1 = (await checkins(runtime, invited))[0]
    assert sent["api"] == "template_send" and _opens(runtime, sent["url"]) == day1.id
    [send] = await sends(runtime, day1.id)
    assert (send.kind, send.status, day1.started_via) == ("template", "sent", "template")
    for enrolment_id, chat_identity_id in chatting:
        waiting = (await checkins(runtime, enrolment_id))[0]
        [turn] = await dialogues(runtime, waiting.id)
        assert (waiting.status, turn.status) == ("started", "received")  # still for a worker and Rasa
        assert fake_wechat.sent((await identity(runtime, chat_identity_id)).openid) == []


async def test_without_a_template_a_check_in_waits_for_the_patient_to_write(
    runtime: Runtime, database_url: str, fake_wechat: FakeWeChat
):
    day = fresh_day()
    version = await make_plan(runtime, definition(unique_code(), days=(1, 3, 7)))
    patient_id, identity_id = await make_patient(runtime, last_inbound_at=None)
    enrolment_id = await enrol_patient(runtime, version, patient_id, day, local(day, 15))
    async with worker_outbox(database_url, fake_wechat, FOLLOWUP_TEMPLATE_ID="") as box:
        await run_followups(box, local(day + timedelta(days=1), 10))
        await run_followups(box, local(day + timedelta(days=1), 11))
        day1 = (await checkins(runtime, enrolment_id))[0]
        assert (day1.status, day1.claims) == ("scheduled", 0)
        assert day1.reason.startswith("waiting for the patient to write")
        assert await dialogues(runtime, day1.id) == []

        # The patient writes: the next run starts the check-in in chat.
        wrote = local(day + timedelta(days=1), 14)
        async with box.runtime.db.sessions() as session:
            holder = await session.get(type(await identity(runtime, identity_id)), identity_id)
            assert holder is not None
            holder.last_inbound_at = wrote
            await session.commit()
        await run_followups(box, wrote + timedelta(minutes=1))
        day1 = (await checkins(runtime, enrolment_id))[0]
        assert (day1.status, day1.started_via) == ("started", "chat")

        # Day 3 and day 7 (after the window closed at day 3 13:50): nobody writes again; both are
        # missed, and the patient is lost to follow-up (失访).
        for later in (3, 6, 7, 11):
            await run_followups(box, local(day + timedelta(days=later), 15))
    day1, day3, day7 = await checkins(runtime, enrolment_id)
    assert (day1.status, day3.status, day7.status) == ("missed", "missed", "missed")
    assert day3.reason == "never started before its window closed"
    assert day1.reason == "unanswered when its window closed"
    done = await enrolment(runtime, enrolment_id)
    assert (done.status, done.lost_to_followup) == ("completed", True)
    assert fake_wechat.sent((await identity(runtime, identity_id)).openid) == []


async def test_one_reminder_for_an_unanswered_check_in(
    runtime: Runtime, outbox: Outbox, fake_wechat: FakeWeChat
):
    day1, identity_id, enrolment_id, started = await started_in_chat(runtime, outbox)
    # The patient wrote the next morning but did not finish; 24 hours after the start: one reminder.
    async with runtime.db.sessions() as session:
        holder = await session.get(type(await identity(runtime, identity_id)), identity_id)
        assert holder is not None
        holder.last_inbound_at = started + timedelta(hours=23)
        await session.commit()
    await run_followups(outbox, started + timedelta(hours=23))
    assert [s.kind for s in await sends(runtime, day1.id)] == ["start_chat"]
    await run_followups(outbox, started + timedelta(hours=24, minutes=1))
    await run_followups(outbox, started + timedelta(hours=30))

    holder = await identity(runtime, identity_id)
    [reminder] = fake_wechat.sent(holder.openid)
    assert reminder["api"] == "custom_send"
    assert reminder["content"].startswith("【随访提醒】您的出院后第1天随访还没有完成")
    start, sent = await sends(runtime, day1.id)
    assert start.kind == "start_chat"
    assert (sent.kind, sent.status) == ("reminder", "sent")
    assert (await checkins(runtime, enrolment_id))[0].reminded_at is not None


async def _start_ran(runtime: Runtime, checkin_id: int) -> None:
    """The worker has taken the check-in's start (Rasa asked its first question)."""
    async with runtime.db.sessions() as session:
        await session.execute(
            sa.update(InboundMessage)
            .where(InboundMessage.dedupe_key == f"dialogue:followup:checkin:{checkin_id}")
            .values(status="processed")
        )
        await session.commit()


async def test_a_reminder_after_the_start_ran_takes_the_check_in_up_again_in_chat(
    runtime: Runtime, outbox: Outbox, fake_wechat: FakeWeChat
):
    """Once its dialogue ran, the check-in's form may be gone from Rasa (a handover, a lost tracker):
    the reminder is the check-in's dialogue again, which may take up its own open form."""
    day1, identity_id, _enrolment_id, started = await started_in_chat(runtime, outbox)
    await _start_ran(runtime, day1.id)
    later = started + timedelta(hours=24, minutes=1)
    await _set_identity(runtime, identity_id, last_inbound_at=later - timedelta(hours=2))

    await asyncio.gather(run_followups(outbox, later), run_followups(outbox, later + timedelta(seconds=1)))

    _, reminder = await dialogues(runtime, day1.id)
    assert reminder.dedupe_key == f"dialogue:followup:checkin:{day1.id}:reminder"
    assert (reminder.status, reminder.payload["intent"]) == ("received", "EXTERNAL_followup_checkin")
    assert reminder.payload["entities"] == {"checkin_id": day1.id}
    assert reminder.payload["resumes"] == "followup_form"
    assert [(s.kind, s.status) for s in await sends(runtime, day1.id)] == [
        ("start_chat", "queued"),
        ("reminder", "queued"),
    ]
    # The route lets it take up the check-in's own open form (and no other: plan_dialogue's TRIGGER).
    plan = await turns.plan_dialogue(runtime, reminder.id, later)
    assert (plan.step, plan.resumes) == (turns.Step.TRIGGER, "followup_form")
    assert plan.may_start_over(OpenForm("followup_form", {"followup_checkin": day1.id}))
    # Not over the form while it asks about another check-in of the account, nor over a booking.
    assert not plan.may_start_over(OpenForm("followup_form", {"followup_checkin": day1.id + 1}))
    assert not plan.may_start_over(OpenForm("booking_form", {"followup_checkin": day1.id}))
    assert fake_wechat.sent((await identity(runtime, identity_id)).openid) == []


async def _claimed_reminder(runtime: Runtime, checkin_id: int, at: datetime) -> None:
    """What a worker that claimed the check-in's reminder and died at once leaves behind."""
    async with runtime.db.sessions() as session:
        await session.execute(
            sa.update(FollowupCheckin).where(FollowupCheckin.id == checkin_id).values(reminded_at=at)
        )
        await session.commit()


async def _runs_after_the_claim_timed_out(
    runtime: Runtime, outbox: Outbox, enrolment_id: int, claimed_at: datetime
) -> None:
    """The first dispatch run that may take the claim over, which does, and a later one, which must
    not take over what the first run did (the day-1 check-in of the enrolment)."""
    timeout = claim_timeout(runtime.settings)
    await run_followups(outbox, claimed_at + timeout + timedelta(seconds=1))
    taken_over_at = (await checkins(runtime, enrolment_id))[0].reminded_at
    assert taken_over_at is not None and taken_over_at > claimed_at
    await run_followups(outbox, claimed_at + 3 * timeout)
    assert (await checkins(runtime, enrolment_id))[0].reminded_at == taken_over_at


async def test_a_reminder_whose_worker_died_after_claiming_it_is_sent_once_the_claim_times_out(
    runtime: Runtime, outbox: Outbox, fake_wechat: FakeWeChat
):
    day1, identity_id, enrolment_id, started = await started_in_chat(runtime, outbox)
    claimed_at = started + timedelta(hours=24, minutes=1)
    await _set_identity(runtime, identity_id, last_inbound_at=claimed_at - timedelta(hours=2))
    await _claimed_reminder(runtime, day1.id, claimed_at)
    openid = (await identity(runtime, identity_id)).openid

    await run_followups(outbox, claimed_at + timedelta(seconds=5))  # the claim may still be at work
    assert fake_wechat.sent(openid) == []
    await _runs_after_the_claim_timed_out(runtime, outbox, enrolment_id, claimed_at)
    [reminder] = fake_wechat.sent(openid)
    assert reminder["content"].startswith("【随访提醒】")
    start, sent = await sends(runtime, day1.id)
    assert (start.kind, sent.kind, sent.status) == ("start_chat", "reminder", "sent")


async def test_a_reminder_dialogue_its_worker_did_not_queue_is_queued_once_by_a_later_run(
    runtime: Runtime, outbox: Outbox, fake_wechat: FakeWeChat
):
    """The worker recorded the reminder's send and died before queuing its dialogue."""
    day1, identity_id, enrolment_id, started = await started_in_chat(runtime, outbox)
    await _start_ran(runtime, day1.id)
    claimed_at = started + timedelta(hours=24, minutes=1)
    await _set_identity(runtime, identity_id, last_inbound_at=claimed_at - timedelta(hours=2))
    await _claimed_reminder(runtime, day1.id, claimed_at)
    async with runtime.db.sessions() as session:
        session.add(
            FollowupSend(
                checkin_id=day1.id,
                kind="reminder",
                identity_id=identity_id,
                status="queued",
                created_at=claimed_at,
            )
        )
        await session.commit()

    await _runs_after_the_claim_timed_out(runtime, outbox, enrolment_id, claimed_at)
    _, reminder = await dialogues(runtime, day1.id)
    assert reminder.dedupe_key == f"dialogue:followup:checkin:{day1.id}:reminder"
    assert [(s.kind, s.status) for s in await sends(runtime, day1.id)] == [
        ("start_chat", "queued"),
        ("reminder", "queued"),
    ]


async def test_a_reminder_outside_the_window_invites_by_template_worded_as_a_reminder(
    runtime: Runtime, outbox: Outbox, fake_wechat: FakeWeChat
):
    day1, identity_id, enrolment_id, started = await started_in_chat(runtime, outbox)
    await _start_ran(runtime, day1.id)

    await run_followups(outbox, started + timedelta(hours=49))  # the patient's 48 hours are over

    holder = await identity(runtime, identity_id)
    [invited] = fake_wechat.sent(holder.openid)
    assert invited["api"] == "template_send"
    assert "还没有完成" in invited["data"]["first"]["value"]
    assert _opens(runtime, invited["url"]) == day1.id
    reminder = (await dialogues(runtime, day1.id))[-1]
    assert reminder.dedupe_key.endswith(":reminder") and reminder.payload.get("invited_at")
    sent = (await sends(runtime, day1.id))[-1]
    assert (sent.kind, sent.status, sent.message_id is not None) == ("reminder", "sent", True)
    assert (await checkins(runtime, enrolment_id))[0].started_via == "chat"  # the start's, kept


async def test_a_reminder_wechat_refused_in_chat_is_followed_by_the_template(
    runtime: Runtime, outbox: Outbox, fake_wechat: FakeWeChat
):
    """The window closed between the run's look and the reminder's first message (45047)."""
    day1, identity_id, enrolment_id, started = await started_in_chat(runtime, outbox)
    await _start_ran(runtime, day1.id)
    later = started + timedelta(hours=24, minutes=1)
    await _set_identity(runtime, identity_id, last_inbound_at=later - timedelta(hours=47, minutes=40))
    await run_followups(outbox, later)
    reminder = (await dialogues(runtime, day1.id))[-1]
    assert reminder.dedupe_key.endswith(":reminder")
    holder = await _refused(runtime, identity_id, reminder, later, "45047 out of response count limit")
    await outbox.runtime.events.publish(DialogueSettled(reminder.id, reminder.dedupe_key))

    [sent] = fake_wechat.sent(holder.openid)
    assert sent["api"] == "template_send" and "还没有完成" in sent["data"]["first"]["value"]
    _, refused, invited = await sends(runtime, day1.id)
    assert (refused.kind, refused.status, refused.error) == (
        "reminder",
        "failed",
        "45047 out of response count limit",
    )
    assert (invited.kind, invited.status) == ("reminder", "sent")
    assert (await checkins(runtime, enrolment_id))[0].started_via == "chat"  # the start's, kept


async def _refused(
    runtime: Runtime, identity_id: int, turn: InboundMessage, now: datetime, error: str
) -> WeChatIdentity:
    """What the worker stores when WeChat refuses the first message of a dialogue turn (the window
    closed meanwhile): the answer undeliverable with WeChat's error, the turn processed."""
    async with runtime.db.sessions() as session:
        holder = await session.get(WeChatIdentity, identity_id)
        assert holder is not None
        conversation = await current_conversation(session, holder, now)
        await session.flush()
        await store_refused_answer(session, conversation.id, turn, "您好，现在伤口疼痛有几分？", error)
        await session.commit()
        return holder


async def _set_identity(runtime: Runtime, identity_id: int, **values: object) -> None:
    async with runtime.db.sessions() as session:
        await session.execute(
            sa.update(WeChatIdentity).where(WeChatIdentity.id == identity_id).values(**values)
        )
        await session.commit()


async def test_postponed_check_in_starts_again_with_a_new_dialogue(runtime: Runtime, outbox: Outbox):
    day1, _, enrolment_id, started = await started_in_chat(runtime, outbox)
    again_at = started + timedelta(hours=5)
    await _set(runtime, day1.id, postponed_until=again_at)  # 稍后再说, as the dialogue records it

    await run_followups(outbox, again_at - timedelta(minutes=1))
    assert len(await dialogues(runtime, day1.id)) == 1
    await asyncio.gather(
        run_followups(outbox, again_at), run_followups(outbox, again_at + timedelta(seconds=1))
    )

    first, second = await dialogues(runtime, day1.id)
    assert first.dedupe_key == f"dialogue:followup:checkin:{day1.id}"
    assert second.dedupe_key == f"dialogue:followup:checkin:{day1.id}:{int(again_at.timestamp())}"
    assert second.payload["entities"] == {"checkin_id": day1.id}
    day1 = (await checkins(runtime, enrolment_id))[0]
    assert (day1.status, day1.postponed_until) == ("started", None)
    assert day1.started_at is not None  # the run's time, moving on from again_at as the run goes
    assert again_at <= day1.started_at < again_at + timedelta(seconds=30)
    assert day1.claims == 1  # a start again is not a retry: postponing never sends it to the phone list


async def test_answered_check_ins_complete_the_enrolment(runtime: Runtime, outbox: Outbox):
    day = fresh_day()
    version = await make_plan(runtime, definition(unique_code(), days=(1, 3)))
    patient_id, _ = await make_patient(runtime, last_inbound_at=local(day, 12))
    enrolment_id = await enrol_patient(runtime, version, patient_id, day, local(day, 15))
    for checkin in await checkins(runtime, enrolment_id):
        await _set(runtime, checkin.id, status="answered", answered_at=local(day, 16))
    await run_followups(outbox, local(day, 21))  # closing windows runs at night too; it sends nothing
    done = await enrolment(runtime, enrolment_id)
    assert (done.status, done.lost_to_followup) == ("completed", False)


async def test_on_sqlite_each_check_in_is_claimed_once(tmp_path: Path, fake_wechat: FakeWeChat):
    url = f"sqlite+aiosqlite:///{tmp_path / 'carebridge.db'}"
    alembic(url, "upgrade", "head")
    day = fresh_day()
    now = local(day + timedelta(days=1), 10, 1)
    async with (
        worker_outbox(url, fake_wechat, FOLLOWUP_TEMPLATE_ID=TEMPLATE_ID) as first,
        worker_outbox(url, fake_wechat, FOLLOWUP_TEMPLATE_ID=TEMPLATE_ID) as second,
    ):
        version = await make_plan(first.runtime, definition(unique_code(), days=(1, 3)))
        enrolments = []
        for _ in range(3):
            patient_id, _ = await make_patient(first.runtime, last_inbound_at=now - timedelta(hours=3))
            enrolments.append(await enrol_patient(first.runtime, version, patient_id, day, local(day, 15)))
        await asyncio.gather(run_followups(first, now), run_followups(second, now))
        for enrolment_id in enrolments:
            day1 = (await checkins(first.runtime, enrolment_id))[0]
            assert (day1.status, day1.claims) == ("started", 1)
            assert len(await dialogues(first.runtime, day1.id)) == 1


async def test_no_reminder_for_an_enrolment_paused_after_the_run_listed_it(
    runtime: Runtime, outbox: Outbox, fake_wechat: FakeWeChat
):
    """A nurse pauses the enrolment while a dispatch run is between listing and reminding."""
    day1, identity_id, enrolment_id, started = await started_in_chat(runtime, outbox)
    async with runtime.db.sessions() as session:
        await pause_enrolment(session, enrolment_id)
        await session.commit()

    assert await dispatch._remind(outbox, day1.id, started + timedelta(hours=25)) is False

    assert [s.kind for s in await sends(runtime, day1.id)] == ["start_chat"]
    assert (await checkins(runtime, enrolment_id))[0].reminded_at is None
    holder = await identity(runtime, identity_id)
    assert [m["api"] for m in fake_wechat.sent(holder.openid)] == []


async def test_no_reminder_while_staff_hold_the_conversation(
    runtime: Runtime, outbox: Outbox, fake_wechat: FakeWeChat
):
    day1, identity_id, enrolment_id, started = await started_in_chat(runtime, outbox)
    later = started + timedelta(hours=25)
    async with runtime.db.sessions() as session:
        holder = await session.get(WeChatIdentity, identity_id)
        assert holder is not None
        holder.last_inbound_at = later - timedelta(minutes=5)
        conversation = await current_conversation(session, holder, later)
        conversation.status = ConversationStatus.ESCALATED
        await session.commit()

    await run_followups(outbox, later)
    assert fake_wechat.sent(holder.openid) == []
    assert [s.kind for s in await sends(runtime, day1.id)] == ["start_chat"]
    assert (await checkins(runtime, enrolment_id))[0].reminded_at is None

    async with runtime.db.sessions() as session:  # the nurse hands the chat back
        await session.execute(
            sa.update(Conversation)
            .where(Conversation.id == conversation.id)
            .values(status=ConversationStatus.BOT)
        )
        await session.commit()
    await run_followups(outbox, later + timedelta(minutes=1))
    [reminder] = fake_wechat.sent(holder.openid)
    assert reminder["content"].startswith("【随访提醒】")


async def test_a_refused_chat_start_is_followed_by_the_template(
    runtime: Runtime, outbox: Outbox, fake_wechat: FakeWeChat
):
    """WeChat refused the check-in's first question (45015: the window closed meanwhile)."""
    day = fresh_day()
    version = await make_plan(runtime, definition(unique_code(), days=(1, 7)))
    now = local(day + timedelta(days=1), 10)
    patient_id, identity_id = await make_patient(runtime, last_inbound_at=now - timedelta(hours=47))
    enrolment_id = await enrol_patient(runtime, version, patient_id, day, local(day, 15))
    await run_followups(outbox, now)
    day1 = (await checkins(runtime, enrolment_id))[0]
    [turn] = await dialogues(runtime, day1.id)
    holder = await _refused(runtime, identity_id, turn, now, "45015 response out of time limit")
    await outbox.runtime.events.publish(DialogueSettled(turn.id, turn.dedupe_key))
    await outbox.runtime.events.publish(DialogueSettled(turn.id, turn.dedupe_key))  # told twice: invited once

    [sent] = fake_wechat.sent(holder.openid)
    assert sent["api"] == "template_send" and _opens(runtime, sent["url"]) == day1.id
    refused, invited = await sends(runtime, day1.id)
    assert (refused.kind, refused.status, refused.error) == (
        "start_chat",
        "failed",
        "45015 response out of time limit",
    )
    assert (invited.kind, invited.status) == ("template", "sent")
    assert (await checkins(runtime, enrolment_id))[0].started_via == "template"


async def test_a_stop_while_the_check_in_is_being_started_sends_nothing(
    runtime: Runtime, outbox: Outbox, fake_wechat: FakeWeChat, monkeypatch: pytest.MonkeyPatch
):
    """A nurse stops the enrolment (deceased) after the worker checked it was active and before its
    dialogue was queued: the stop finds no turn to cancel, so the worker must cancel the one it queues."""
    day = fresh_day()
    version = await make_plan(runtime, definition(unique_code(), days=(1, 3)))
    now = local(day + timedelta(days=1), 10, 30)
    patient_id, identity_id = await make_patient(runtime, last_inbound_at=now - timedelta(days=5))
    enrolment_id = await enrol_patient(runtime, version, patient_id, day, local(day, 15))
    real_start = dispatch.start_dialogue

    async def stopped_meanwhile(rt: Runtime, request: DialogueRequest, **options: bool) -> int | None:
        async with runtime.db.sessions() as session:
            await stop_enrolment(session, enrolment_id, StopReason.deceased)
            await session.commit()
        return await real_start(rt, request, **options)

    monkeypatch.setattr(dispatch, "start_dialogue", stopped_meanwhile)
    await run_followups(outbox, now)
    monkeypatch.undo()
    holder = await identity(runtime, identity_id)
    await worker_turns(outbox, holder, now + timedelta(seconds=5))

    day1, day3 = await checkins(runtime, enrolment_id)
    assert (day1.status, day3.status) == ("skipped", "skipped")
    assert fake_wechat.sent(holder.openid) == []  # no invitation to a deceased patient's family
    [turn] = await dialogues(runtime, day1.id)
    assert turn.status == "failed"
