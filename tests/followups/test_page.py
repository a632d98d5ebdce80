# ruff: noqa: F811 (pytest fixtures imported from page_support are parameters here)
"""The mobile questionnaire page's server side, through the web app as deployed: one question at a
time with conditions applied by the server, refused values with a hint and nothing stored, the same
outcome and escalation as chat, and links that are forged, expired or for a closed check-in refused.
Worrying answers count when they are given: an emergency ends the check-in with 120 at once, a red
answer reaches the team at once, and a check-in left after a red answer keeps its flag on the
nurses' lists, also once it is missed.
(The page in a real browser: tests/browser/test_followup_page.py.)"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta
from typing import Any

import httpx
from itsdangerous import TimestampSigner
from sqlalchemy import select

from crm_backend.conversations.models import Conversation
from crm_backend.escalations.models import Escalation
from crm_backend.followups import links
from crm_backend.followups.dispatch import close_windows
from crm_backend.followups.models import FollowupAnswer, FollowupCheckin, FollowupEnrolment
from crm_backend.runtime import Runtime
from tests.followups.page_support import (  # noqa: F401 (fixtures)
    PLAN_WITH_CONCERNS,
    admin_client,
    app,
    client,
    database_url,
    enrol,
    make_team,
    runtime,
)


def _path(runtime: Runtime, checkin_id: int) -> str:
    return links.PAGE_PATH + links.checkin_token(runtime.settings, checkin_id)


async def _answer(client: httpx.AsyncClient, path: str, question: str, value: Any) -> httpx.Response:
    return await client.post(f"{path}/answers", json={"question": question, "value": value})


async def _stored(runtime: Runtime, checkin_id: int) -> dict[str, FollowupAnswer]:
    async with runtime.db.sessions() as session:
        rows = await session.scalars(select(FollowupAnswer).where(FollowupAnswer.checkin_id == checkin_id))
        return {row.question: row for row in rows}


async def _checkin(runtime: Runtime, checkin_id: int) -> FollowupCheckin:
    async with runtime.db.sessions() as session:
        row = await session.get(FollowupCheckin, checkin_id)
        assert row is not None
        return row


async def test_the_page_asks_one_question_at_a_time_and_skips_a_condition_not_met(
    runtime: Runtime, client: httpx.AsyncClient
) -> None:
    enrolled = await enrol(runtime, await make_team(runtime), name="张三丰")
    path = _path(runtime, enrolled.checkin_id)

    shell = await client.get(path)
    assert shell.status_code == 200
    assert 'name="viewport"' in shell.text
    assert "script-src 'self'" in shell.headers["content-security-policy"]
    assert "unsafe-inline" not in shell.headers["content-security-policy"]
    assert shell.headers["cache-control"] == "no-store"
    assert shell.headers["referrer-policy"] == "no-referrer"  # the token is in the address

    answer = await client.get(f"{path}/state")
    assert (
        answer.headers["cache-control"] == "no-store" and answer.headers["referrer-policy"] == "no-referrer"
    )
    first = answer.json()
    assert (first["patient"], first["plan"], first["day_label"]) == (
        "张**",
        "腹腔镜胆囊切除术后随访",
        "出院后第 1 天",
    )
    assert first["question"]["code"] == "pain" and first["previous"] is None
    assert (
        "flags" not in first["question"] and "enable_when" not in first["question"]
    )  # rules stay on the server

    steps = [("pain", 2, "temperature"), ("temperature", 36.8, "wound_red"), ("wound_red", False, "symptoms")]
    for code, value, expected_next in steps:
        response = await _answer(client, path, code, value)
        assert response.status_code == 200, response.text
        assert response.json()["question"]["code"] == expected_next  # no wound discharge: not red
    done = await _answer(client, path, "symptoms", [])
    assert done.status_code == 200
    state = done.json()
    assert state["status"] == "answered"
    assert state["outcome"]["flag"] == "green"
    assert "恢复情况良好" in state["outcome"]["text"] and "下次随访时间" in state["outcome"]["text"]

    row = await _checkin(runtime, enrolled.checkin_id)
    assert (row.status, row.channel, row.worst_flag) == ("answered", "page", "green")
    stored = await _stored(runtime, enrolled.checkin_id)
    assert set(stored) == {"pain", "temperature", "wound_red", "symptoms"}
    assert {a.channel for a in stored.values()} == {"page"}
    assert {a.answered_by_identity_id for a in stored.values()} == {enrolled.identity_id}

    # Opened again: the closed page with the same outcome, and no further answer is taken.
    again = (await client.get(f"{path}/state")).json()
    assert again["status"] == "answered" and again["outcome"]["flag"] == "green"
    late = await _answer(client, path, "pain", 9)
    assert late.status_code == 409
    assert (await _stored(runtime, enrolled.checkin_id))["pain"].value == 2


async def test_a_red_wound_brings_its_follow_up_question_and_an_urgent_escalation_to_the_team(
    runtime: Runtime, client: httpx.AsyncClient
) -> None:
    team_id = await make_team(runtime)
    enrolled = await enrol(runtime, team_id)
    path = _path(runtime, enrolled.checkin_id)
    for code, value in [("pain", 3), ("temperature", 37.2)]:
        assert (await _answer(client, path, code, value)).status_code == 200
    after_red = (await _answer(client, path, "wound_red", True)).json()
    assert after_red["question"]["code"] == "wound_discharge"
    assert after_red["previous"] == "wound_red"
    assert (await _answer(client, path, "wound_discharge", True)).status_code == 200
    done = (await _answer(client, path, "symptoms", ["nausea"])).json()
    assert done["outcome"]["flag"] == "red"
    assert "伤口可能感染" in done["outcome"]["text"] and "护士" in done["outcome"]["text"]

    async with runtime.db.sessions() as session:
        escalation = await session.scalar(
            select(Escalation)
            .join(Conversation, Conversation.id == Escalation.conversation_id)
            .where(Conversation.identity_id == enrolled.identity_id)
        )
    assert escalation is not None
    assert (escalation.team_id, escalation.priority) == (team_id, "urgent")
    assert escalation.reason.startswith("随访红色预警") and "伤口有没有流液或流脓：是" in escalation.reason


async def test_going_back_to_correct_an_answer_drops_the_question_it_no_longer_asks(
    runtime: Runtime, client: httpx.AsyncClient
) -> None:
    enrolled = await enrol(runtime, await make_team(runtime))
    path = _path(runtime, enrolled.checkin_id)
    for code, value in [("pain", 1), ("temperature", 36.5), ("wound_red", True), ("wound_discharge", True)]:
        assert (await _answer(client, path, code, value)).status_code == 200
    back = (await client.get(f"{path}/state", params={"question": "wound_red"})).json()
    assert back["question"]["code"] == "wound_red" and back["question"]["value"] is True
    corrected = (await _answer(client, path, "wound_red", False)).json()
    assert corrected["question"]["code"] == "symptoms"
    done = (await _answer(client, path, "symptoms", [])).json()
    assert done["outcome"]["flag"] == "green"  # the discharge answer no longer counts


async def test_refused_answers_get_a_hint_and_change_nothing(
    runtime: Runtime, client: httpx.AsyncClient
) -> None:
    enrolled = await enrol(runtime, await make_team(runtime))
    path = _path(runtime, enrolled.checkin_id)
    assert (await _answer(client, path, "pain", 4)).status_code == 200

    for value in (43, 34.9, "三十八", True):
        refused = await _answer(client, path, "temperature", value)
        assert refused.status_code == 422, (value, refused.text)
        assert refused.json()["detail"] == "请填写 35 到 42 之间的数字（单位：°C）"
    assert (await _answer(client, path, "pain", 11)).status_code == 422
    assert (await _answer(client, path, "symptoms", ["headache"])).status_code == 422
    unknown = await _answer(client, path, "no_such_question", 1)
    assert unknown.status_code == 422
    not_asked = await _answer(client, path, "wound_discharge", True)  # the wound is not red (yet)
    assert not_asked.status_code == 422

    malformed = [
        {"question": "temperature"},
        {"question": "temperature", "value": 37, "extra": 1},
        {"question": "Temperature; drop", "value": 37},
        {"question": "notes", "value": "x" * 1001},
        {"question": "symptoms", "value": ["nausea"] * 31},
        {"question": "temperature", "value": [38]},
        ["temperature", 37],
    ]
    for body in malformed:
        response = await client.post(f"{path}/answers", json=body)
        assert response.status_code == 400, (body, response.text)
    nan = await client.post(
        f"{path}/answers",
        content=b'{"question": "temperature", "value": NaN}',
        headers={"content-type": "application/json"},
    )
    assert nan.status_code in (400, 422)
    huge = await client.post(f"{path}/answers", content=b"{" + b" " * 20_000 + b"}")
    assert huge.status_code == 413

    stored = await _stored(runtime, enrolled.checkin_id)
    assert set(stored) == {"pain"} and stored["pain"].value == 4
    row = await _checkin(runtime, enrolled.checkin_id)
    assert row.status == "started" and row.worst_flag == "amber"  # pain 4, the flag so far


async def test_forged_expired_and_closed_links_are_refused(
    runtime: Runtime, client: httpx.AsyncClient
) -> None:
    enrolled = await enrol(runtime, await make_team(runtime))
    good = links.checkin_token(runtime.settings, enrolled.checkin_id)

    forged = links.PAGE_PATH + good[:-3] + ("aaa" if not good.endswith("aaa") else "bbb")
    page = await client.get(forged)
    assert page.status_code == 404 and "链接无效" in page.text
    assert "<script" not in page.text
    assert (await client.get(f"{forged}/state")).status_code == 404
    assert (await _answer(client, forged, "pain", 1)).status_code == 404

    hours = runtime.settings.followup_link_hours

    class SignedLongAgo(TimestampSigner):  # as a patient finds the message days later
        def get_timestamp(self) -> int:
            return int(time.time() - hours * 3600 - 60)

    old = links._serializer(runtime.settings)
    old.signer = SignedLongAgo
    expired = links.PAGE_PATH + old.dumps({"checkin": enrolled.checkin_id})
    page = await client.get(expired)
    assert page.status_code == 410
    assert "链接已过期，请在公众号里回复任意消息继续随访" in page.text
    assert (await _answer(client, expired, "pain", 1)).status_code == 410

    nobody = links.PAGE_PATH + links.checkin_token(runtime.settings, 2_000_000)
    assert (await client.get(nobody)).status_code == 404
    assert await _stored(runtime, enrolled.checkin_id) == {}

    missed = await enrol(runtime, enrolled.team_id, status="missed")
    state = (await client.get(f"{_path(runtime, missed.checkin_id)}/state")).json()
    assert state["status"] == "closed" and "护士会电话联系您" in state["message"]
    stopped = await enrol(runtime, enrolled.team_id)
    async with runtime.db.sessions() as session:
        enrolment = await session.get(FollowupEnrolment, stopped.enrolment_id)
        assert enrolment is not None
        enrolment.status = "stopped"
        await session.commit()
    refused = await _answer(client, _path(runtime, stopped.checkin_id), "pain", 1)
    assert refused.status_code == 409 and refused.json()["state"]["status"] == "closed"
    assert refused.json()["detail"] == "本次随访已结束，无需填写。如有不适，请在公众号里留言或及时就医。"
    assert await _stored(runtime, stopped.checkin_id) == {}


async def test_two_taps_on_the_last_answer_complete_the_check_in_once(
    runtime: Runtime, client: httpx.AsyncClient
) -> None:
    enrolled = await enrol(runtime, await make_team(runtime))
    path = _path(runtime, enrolled.checkin_id)
    for code, value in [("pain", 8), ("temperature", 37.0), ("wound_red", False)]:
        assert (await _answer(client, path, code, value)).status_code == 200
    first, second = await asyncio.gather(
        _answer(client, path, "symptoms", []), _answer(client, path, "symptoms", ["nausea"])
    )
    assert sorted([first.status_code, second.status_code]) == [200, 409], (first.text, second.text)
    done = first if first.status_code == 200 else second
    assert done.json()["outcome"]["flag"] == "red"
    async with runtime.db.sessions() as session:
        escalations = (
            await session.scalars(
                select(Escalation)
                .join(Conversation, Conversation.id == Escalation.conversation_id)
                .where(Conversation.identity_id == enrolled.identity_id)
            )
        ).all()
    assert len(escalations) == 1


# -- worrying answers count when they are given -----------------------------------------------------


async def _answered(client: httpx.AsyncClient, path: str, question: str, value: Any) -> dict[str, Any]:
    response = await _answer(client, path, question, value)
    assert response.status_code == 200, response.text
    return response.json()


async def _escalations(runtime: Runtime, identity_id: int | None) -> list[Escalation]:
    async with runtime.db.sessions() as session:
        rows = await session.scalars(
            select(Escalation)
            .join(Conversation, Conversation.id == Escalation.conversation_id)
            .where(Conversation.identity_id == identity_id)
        )
        return list(rows)


async def _listed(client: httpx.AsyncClient, kind: str, checkin_id: int) -> list[dict[str, Any]]:
    response = await client.get("/api/console/followups/worklists/" + kind)
    assert response.status_code == 200, response.text
    return [item for item in response.json() if item["id"] == checkin_id]


async def test_an_emergency_ticked_before_the_last_question_ends_the_check_in_with_120_at_once(
    runtime: Runtime, client: httpx.AsyncClient
) -> None:
    team_id = await make_team(runtime)
    enrolled = await enrol(runtime, team_id, plan_code=PLAN_WITH_CONCERNS["code"])
    path = _path(runtime, enrolled.checkin_id)
    for code, value in [("pain", 2), ("temperature", 36.8), ("wound_red", False)]:
        assert (await _answered(client, path, code, value))["question"]["code"] != "concerns"

    state = await _answered(client, path, "symptoms", ["chest_pain"])  # a free-text question follows

    assert state["status"] == "answered" and state["question"] is None
    assert state["outcome"]["flag"] == "emergency" and "120" in state["outcome"]["text"]
    row = await _checkin(runtime, enrolled.checkin_id)
    assert (row.status, row.channel, row.worst_flag) == ("answered", "page", "emergency")
    [escalation] = await _escalations(runtime, enrolled.identity_id)
    assert (escalation.team_id, escalation.priority) == (team_id, "urgent")
    assert escalation.reason.startswith("随访急症预警")
    # Opened again, the page shows the same advice; nothing more is asked.
    again = (await client.get(f"{path}/state")).json()
    assert again["status"] == "answered" and "120" in again["outcome"]["text"]


async def test_a_red_answer_reaches_the_team_when_given_and_the_end_does_not_escalate_again(
    runtime: Runtime, client: httpx.AsyncClient
) -> None:
    team_id = await make_team(runtime)
    enrolled = await enrol(runtime, team_id)
    path = _path(runtime, enrolled.checkin_id)
    await _answered(client, path, "pain", 2)

    after_fever = await _answered(client, path, "temperature", 39.0)

    assert after_fever["status"] == "open" and after_fever["question"]["code"] == "wound_red"
    row = await _checkin(runtime, enrolled.checkin_id)
    assert (row.status, row.worst_flag) == ("started", "red")
    [escalation] = await _escalations(runtime, enrolled.identity_id)
    assert (escalation.team_id, escalation.priority) == (team_id, "urgent")
    assert escalation.reason.startswith("随访红色预警") and "体温" in escalation.reason

    await _answered(client, path, "wound_red", False)
    done = await _answered(client, path, "symptoms", [])
    assert done["outcome"]["flag"] == "red" and "体温偏高" in done["outcome"]["text"]
    assert len(await _escalations(runtime, enrolled.identity_id)) == 1


async def test_a_check_in_left_after_a_red_answer_keeps_its_flag_on_the_lists_when_missed(
    runtime: Runtime, client: httpx.AsyncClient, admin_client: httpx.AsyncClient
) -> None:
    """体温 39, then silence: the team's flagged list has it at once (reply now), and when its
    window closes it is missed with its red flag, still flagged, and on the phone list once."""
    enrolled = await enrol(runtime, await make_team(runtime))
    path = _path(runtime, enrolled.checkin_id)
    await _answered(client, path, "pain", 5)  # amber
    await _answered(client, path, "temperature", 39.0)  # red
    async with runtime.db.sessions() as session:
        fever_at = await session.scalar(
            select(FollowupAnswer.created_at).where(
                FollowupAnswer.checkin_id == enrolled.checkin_id, FollowupAnswer.question == "temperature"
            )
        )
    assert fever_at is not None

    [flagged] = await _listed(admin_client, "flagged", enrolled.checkin_id)
    assert (flagged["status"], flagged["worst_flag"]) == ("started", "red")
    assert datetime.fromisoformat(flagged["reply_by"]) == fever_at  # red: now

    row = await _checkin(runtime, enrolled.checkin_id)
    await close_windows(runtime.db.sessions, runtime.settings, row.window_ends_at + timedelta(seconds=1))

    row = await _checkin(runtime, enrolled.checkin_id)
    assert (row.status, row.worst_flag) == ("missed", "red")
    [flagged] = await _listed(admin_client, "flagged", enrolled.checkin_id)
    assert flagged["status"] == "missed"
    assert len(await _listed(admin_client, "phone", enrolled.checkin_id)) == 1
