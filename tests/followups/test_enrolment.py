"""Enrolment: check-ins materialised with their due times in hospital time, what is already due or
past at enrolment, and pause / resume / stop (after a stop nothing more reaches the patient)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa

from channels.outbound.delivery import Outbox
from crm_backend.conversations.models import Conversation, Message
from crm_backend.followups.dispatch import run_followups
from crm_backend.followups.enrolment import (
    EnrolmentError,
    pause_enrolment,
    plan_checkins,
    resume_enrolment,
    stop_enrolment,
    stop_for_checkin,
)
from crm_backend.followups.models import StopReason
from crm_backend.followups.recipients import recipient_of
from crm_backend.patients.models import WeChatIdentity
from crm_backend.runtime import Runtime
from tests.appointments.test_reminders import worker_turns
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
    started_in_chat,
    unique_code,
)
from tests.support.stack import FakeWeChat

HOURS_72 = timedelta(hours=72)


def test_due_times_are_the_time_point_s_hour_in_shanghai_stored_utc():
    plan = definition("lap_chole", days=(0, 1, 3, 30), hour=7)
    anchor = date(2026, 12, 30)
    planned = plan_checkins(plan, anchor, datetime(2026, 12, 30, 0, 0, tzinfo=UTC), HOURS_72)

    # 07:00 in Shanghai is 23:00 UTC the day before: the offset moves the UTC date, not the local one.
    assert [p.due_at for p in planned] == [
        datetime(2026, 12, 29, 23, 0, tzinfo=UTC),
        datetime(2026, 12, 30, 23, 0, tzinfo=UTC),
        datetime(2027, 1, 1, 23, 0, tzinfo=UTC),
        datetime(2027, 1, 28, 23, 0, tzinfo=UTC),
    ]
    assert [local(anchor + timedelta(days=p.day), 7) for p in planned] == [p.due_at for p in planned]
    # Answerable until the next time point is due, and never longer than FOLLOWUP_MISSED_AFTER_HOURS.
    assert [p.window_ends_at for p in planned] == [
        planned[1].due_at,
        planned[2].due_at,
        planned[2].due_at + HOURS_72,
        planned[3].due_at + HOURS_72,
    ]
    assert {p.status for p in planned} == {"scheduled"}


async def test_enrolled_late_a_due_check_in_starts_at_the_next_dispatch_and_a_past_one_is_skipped(
    runtime: Runtime, outbox: Outbox
):
    day = fresh_day()
    version = await make_plan(runtime, definition(unique_code(), days=(0, 1, 3)))
    patient_id, identity_id = await make_patient(runtime, last_inbound_at=local(day + timedelta(days=1), 9))
    # Discharged on `day`, enrolled the next afternoon: day 0's window closed at day 1's 10:00.
    now = local(day + timedelta(days=1), 15)
    enrolment_id = await enrol_patient(runtime, version, patient_id, day, now)

    day0, day1, day3 = await checkins(runtime, enrolment_id)
    assert (day0.status, day0.reason) == ("skipped", "its answer window had closed before enrolment")
    assert (day1.status, day3.status) == ("scheduled", "scheduled")
    assert day1.due_at < now < day1.window_ends_at

    await run_followups(outbox, now + timedelta(minutes=1))

    day0, day1, day3 = await checkins(runtime, enrolment_id)
    assert (day0.status, day1.status, day3.status) == ("skipped", "started", "scheduled")
    assert (day1.started_via, day1.identity_id) == ("chat", identity_id)
    [turn] = await dialogues(runtime, day1.id)
    assert turn.event == "EXTERNAL_followup_checkin"
    assert turn.payload["entities"] == {"checkin_id": day1.id}
    assert turn.payload["needs_consent"] is True
    assert datetime.fromisoformat(turn.payload["expires_at"]) == day1.window_ends_at
    assert await dialogues(runtime, day0.id) == []


async def test_stopped_enrolment_sends_nothing_more(
    runtime: Runtime, outbox: Outbox, fake_wechat: FakeWeChat
):
    day = fresh_day()
    version = await make_plan(runtime, definition(unique_code(), days=(1, 3, 7)))
    started_at = local(day + timedelta(days=1), 10, 5)
    patient_id, identity_id = await make_patient(runtime, last_inbound_at=started_at - timedelta(hours=60))
    enrolment_id = await enrol_patient(runtime, version, patient_id, day, local(day, 16))
    await run_followups(outbox, started_at)  # day 1: the run itself sends its invitation
    first = (await checkins(runtime, enrolment_id))[0]
    [turn] = await dialogues(runtime, first.id)
    patient = await identity(runtime, identity_id)
    [invitation] = fake_wechat.sent(patient.openid)
    assert invitation["api"] == "template_send"

    async with runtime.db.sessions() as session:  # as the dialogue's confirmed 不想再收到随访 does
        await stop_for_checkin(session, first.id, StopReason.opted_out, note="不想再收到随访")
        await session.commit()
        with pytest.raises(EnrolmentError):
            await pause_enrolment(session, enrolment_id)

    stopped = await enrolment(runtime, enrolment_id)
    assert (stopped.status, stopped.stop_reason, stopped.stop_note) == (
        "stopped",
        "opted_out",
        "不想再收到随访",
    )
    assert {(c.status, c.reason) for c in await checkins(runtime, enrolment_id)} == {
        ("skipped", "enrolment stopped (opted_out)")
    }
    [failed] = await dialogues(runtime, first.id)
    assert (failed.id, failed.status) == (turn.id, "failed")

    # The patient's reply to the invitation starts nothing, and later runs start nothing.
    await worker_turns(outbox, patient, started_at + timedelta(minutes=1))
    for later in (2, 3, 7, 8):
        await run_followups(outbox, local(day + timedelta(days=later), 10, 30))
    assert fake_wechat.sent(patient.openid) == [invitation]
    for checkin in await checkins(runtime, enrolment_id):
        assert len(await dialogues(runtime, checkin.id)) == (1 if checkin.id == first.id else 0)


async def test_pause_holds_check_ins_and_resume_skips_what_closed_meanwhile(runtime: Runtime, outbox: Outbox):
    day = fresh_day()
    version = await make_plan(runtime, definition(unique_code(), days=(1, 3, 7)))
    patient_id, _ = await make_patient(runtime, last_inbound_at=local(day, 9))
    enrolment_id = await enrol_patient(runtime, version, patient_id, day, local(day, 16))
    async with runtime.db.sessions() as session:
        await pause_enrolment(session, enrolment_id, local(day, 17))
        await session.commit()

    await run_followups(outbox, local(day + timedelta(days=1), 10, 30))
    assert [c.status for c in await checkins(runtime, enrolment_id)] == ["scheduled"] * 3

    async with runtime.db.sessions() as session:
        await resume_enrolment(session, enrolment_id, local(day + timedelta(days=5), 9))
        await session.commit()
    day1, day3, day7 = await checkins(runtime, enrolment_id)
    assert (day1.status, day3.status, day7.status) == ("skipped", "scheduled", "scheduled")
    assert day1.reason == "its answer window closed while the enrolment was paused"
    assert (await enrolment(runtime, enrolment_id)).status == "active"


async def test_an_invitation_waiting_for_wechat_is_not_sent_after_a_stop(
    runtime: Runtime, outbox: Outbox, fake_wechat: FakeWeChat
):
    day = fresh_day()
    version = await make_plan(runtime, definition(unique_code(), days=(1, 3)))
    now = local(day + timedelta(days=1), 10, 5)
    patient_id, identity_id = await make_patient(runtime, last_inbound_at=now - timedelta(days=4))
    enrolment_id = await enrol_patient(runtime, version, patient_id, day, local(day, 16))
    # WeChat is out of reach while the run sends the invitation: it stays queued for a retry.
    fake_wechat.fault(
        api="template_send", http_status=502, times=outbox.runtime.settings.delivery_max_attempts
    )
    await run_followups(outbox, now)
    fake_wechat.clear_faults()
    holder = await identity(runtime, identity_id)
    [invitation] = await _messages(runtime, identity_id)
    assert (invitation.msg_type, invitation.delivery_status) == ("template", "pending")

    async with runtime.db.sessions() as session:
        await stop_enrolment(session, enrolment_id, StopReason.readmitted)
        await session.commit()
    await outbox.deliver_conversation(invitation.conversation_id)  # the sweeper's retry
    [invitation] = await _messages(runtime, identity_id)
    assert (invitation.delivery_status, invitation.delivery_error) == (
        "failed",
        "follow-up stopped (readmitted)",
    )
    assert fake_wechat.sent(holder.openid) == []


async def test_a_reminder_waiting_for_wechat_is_not_sent_after_a_stop(
    runtime: Runtime, outbox: Outbox, fake_wechat: FakeWeChat
):
    """The dispatcher stores reminders itself (no dialogue turn): a stop fails them too."""
    _, identity_id, enrolment_id, started = await started_in_chat(runtime, outbox)
    later = started + timedelta(hours=24, minutes=1)
    async with runtime.db.sessions() as session:  # the patient wrote since: a chat reminder
        holder = await session.get(WeChatIdentity, identity_id)
        assert holder is not None
        holder.last_inbound_at = later - timedelta(hours=1)
        await session.commit()
    fake_wechat.fault(api="custom_send", http_status=502, times=outbox.runtime.settings.delivery_max_attempts)
    await run_followups(outbox, later)
    fake_wechat.clear_faults()
    [reminder] = [m for m in await _messages(runtime, identity_id) if m.content.startswith("【随访提醒】")]
    assert reminder.delivery_status == "pending"

    async with runtime.db.sessions() as session:
        await stop_enrolment(session, enrolment_id, StopReason.deceased)
        await session.commit()
    await outbox.deliver_conversation(reminder.conversation_id)  # the sweeper's retry
    [reminder] = [m for m in await _messages(runtime, identity_id) if m.content.startswith("【随访提醒】")]
    assert (reminder.delivery_status, reminder.delivery_error) == ("failed", "follow-up stopped (deceased)")
    assert fake_wechat.sent((await identity(runtime, identity_id)).openid) == []


async def _messages(runtime: Runtime, identity_id: int) -> list[Message]:
    async with runtime.db.sessions() as session:
        rows = await session.scalars(
            sa.select(Message)
            .join(Conversation, Message.conversation_id == Conversation.id)
            .where(Conversation.identity_id == identity_id)
            .order_by(Message.id)
        )
        return list(rows.all())


async def test_the_check_in_goes_to_whoever_can_answer(runtime: Runtime):
    """The patient's own account first; a family member who manages them when the patient's own
    account no longer follows ours; nobody when no account can be reached."""
    own_id, own_identity = await make_patient(runtime)
    managed_id, daughter_identity = await make_patient(runtime, own_identity=False, family=True)
    nobody_id, _ = await make_patient(runtime, own_identity=False)
    async with runtime.db.sessions() as session:
        session.add(
            WeChatIdentity(
                app_id="wx_test",
                openid=f"openid-unfollowed-{managed_id}",
                patient_id=managed_id,
                subscribed=False,
            )
        )
        await session.commit()
        own = await recipient_of(session, own_id)
        managed = await recipient_of(session, managed_id)
        assert own is not None and (own.identity.id, own.for_someone_else) == (own_identity, False)
        assert managed is not None and (managed.identity.id, managed.for_someone_else) == (
            daughter_identity,
            True,
        )
        assert await recipient_of(session, nobody_id) is None
