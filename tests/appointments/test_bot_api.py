"""The bot API the action server uses: token, sender scoping, registration, understanding, booking."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from crm_backend.appointments.bot_views import router as booking_router
from crm_backend.appointments.models import Appointment, Department, Schedule
from crm_backend.appointments.service import hospital_today
from crm_backend.config import SANDBOX_INTERNAL_TOKEN
from crm_backend.database.core import utcnow
from crm_backend.patients.bot_views import router as patients_router
from crm_backend.patients.models import Patient, PatientLink, WeChatIdentity
from crm_backend.patients.validation import id_checksum_char
from crm_backend.runtime import Runtime
from tests.appointments.conftest import make_department, make_schedule
from tests.support.api import build_api_app

_openids = itertools.count(1)


def resident_id(birth: str = "19900307", serial: str = "123") -> str:
    first17 = f"110101{birth}{serial}"
    return first17 + id_checksum_char(first17)


@pytest.fixture(scope="module")
async def bot_app(runtime: Runtime) -> FastAPI:
    return await build_api_app(runtime, patients_router, booking_router)


@pytest.fixture
async def bot(bot_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=bot_app)
    headers = {"Authorization": f"Bearer {SANDBOX_INTERNAL_TOKEN}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver", headers=headers) as c:
        yield c


async def new_sender(runtime: Runtime) -> str:
    """A WeChat identity with its own (empty) patient record, as first contact creates it."""
    openid = f"o-bot-api-{next(_openids):05d}"
    async with runtime.db.sessions() as session:
        patient = Patient()
        session.add(patient)
        await session.flush()
        session.add(WeChatIdentity(app_id="wx_test", openid=openid, patient_id=patient.id))
        await session.commit()
    return f"wx_test:{openid}"


async def register(bot: httpx.AsyncClient, sender: str, **details: str) -> httpx.Response:
    body = {"relationship": "self", "name": "王芳", "id_number": resident_id(), "phone": "13800138000"}
    return await bot.post("/internal/bot/patients", params={"sender": sender}, json={**body, **details})


@pytest.fixture(scope="module")
async def kidney(runtime: Runtime) -> Any:
    return await make_department(
        runtime, name="肾脏内科", patient_name="肾内科", aliases=["肾内科", "肾病科"]
    )


async def test_requests_without_the_token_are_refused(bot_app: FastAPI, runtime: Runtime) -> None:
    sender = await new_sender(runtime)
    transport = httpx.ASGITransport(app=bot_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as anonymous:
        assert (await anonymous.get("/internal/bot/patients", params={"sender": sender})).status_code == 401
        wrong = {"Authorization": "Bearer not-the-token"}
        response = await anonymous.post(
            "/internal/bot/patients",
            params={"sender": sender},
            headers=wrong,
            json={"relationship": "self", "name": "王芳", "id_number": resident_id(), "phone": "13800138000"},
        )
        assert response.status_code == 401
    async with runtime.db.sessions() as session:
        assert (
            await session.scalar(
                sa.select(sa.func.count())
                .select_from(PatientLink)
                .where(
                    PatientLink.identity_id.in_(
                        sa.select(WeChatIdentity.id).where(WeChatIdentity.openid == sender.split(":")[1])
                    )
                )
            )
            == 0
        )


async def test_unknown_senders_get_404(bot: httpx.AsyncClient) -> None:
    response = await bot.get("/internal/bot/patients", params={"sender": "wx_test:nobody-we-know"})
    assert response.status_code == 404
    assert (await bot.get("/internal/bot/appointments", params={"sender": "garbage"})).status_code == 404


async def test_registration_says_what_is_wrong_and_answers_masked(bot: httpx.AsyncClient, runtime: Runtime):
    sender = await new_sender(runtime)
    bad_id = resident_id()[:-1] + ("0" if resident_id()[-1] != "0" else "1")
    refused = await register(bot, sender, id_number=bad_id)
    assert refused.status_code == 422
    assert "校验不通过" in refused.json()["message"]
    assert (await bot.get("/internal/bot/patients", params={"sender": sender})).json() == {"patients": []}

    check = await bot.post(
        "/internal/bot/patients/check", params={"sender": sender}, json={"field": "phone", "value": "1380013"}
    )
    assert check.json()["ok"] is False and "手机号" in check.json()["message"]
    check = await bot.post(
        "/internal/bot/patients/check",
        params={"sender": sender},
        json={"field": "relationship", "value": "我妈"},
    )
    assert check.json() == {"ok": True, "value": "parent", "message": None}

    created = await register(bot, sender, id_number=resident_id(serial="456"), name="李秀英")
    assert created.status_code == 201, created.text
    patient = created.json()["patient"]
    assert patient["label"] == "李秀英（本人）"
    assert resident_id(serial="456") not in created.text and "13800138000" not in created.text
    listed = (await bot.get("/internal/bot/patients", params={"sender": sender})).json()["patients"]
    assert [p["id"] for p in listed] == [patient["id"]]


async def test_understanding_reads_department_relation_day_and_half_day(
    bot: httpx.AsyncClient, runtime: Runtime, kidney: Any
) -> None:
    sender = await new_sender(runtime)
    response = await bot.post(
        "/internal/bot/booking/understand",
        params={"sender": sender},
        json={"text": "帮我妈约明天上午的肾病科"},
    )
    words = response.json()
    tomorrow = hospital_today(utcnow()) + timedelta(days=1)
    assert words["department"] == {"id": kidney.id, "name": "肾内科"}
    assert words["relationship"] == "parent"
    assert (words["date_from"], words["date_to"], words["half_day"]) == (
        tomorrow.isoformat(),
        tomorrow.isoformat(),
        "am",
    )
    nothing = (
        await bot.post("/internal/bot/booking/understand", params={"sender": sender}, json={"text": "你好"})
    ).json()
    assert nothing["department"] is None and nothing["date_from"] is None and nothing["relationship"] is None


async def test_booking_is_scoped_to_the_family_and_full_sessions_offer_alternatives(
    bot: httpx.AsyncClient, runtime: Runtime, kidney: Any
) -> None:
    day = hospital_today(utcnow()) + timedelta(days=3)
    full_soon = await make_schedule(runtime, day, "am", capacity=1, department=kidney, doctor_name="肾一")
    later = await make_schedule(runtime, day + timedelta(days=1), "pm", capacity=5, department=kidney)
    mother_sender, other_sender = await new_sender(runtime), await new_sender(runtime)
    mine = (await register(bot, mother_sender, id_number=resident_id(serial="612"), name="周敏")).json()
    theirs = (await register(bot, other_sender, id_number=resident_id(serial="734"), name="吴磊")).json()

    query = {"department_id": kidney.id, "date_from": day.isoformat(), "date_to": day.isoformat()}
    offered = (
        await bot.post("/internal/bot/booking/openings", params={"sender": mother_sender}, json=query)
    ).json()
    assert [o["schedule_id"] for o in offered["openings"]] == [full_soon.id]

    # Another family's account cannot book for this patient.
    foreign = await bot.post(
        "/internal/bot/appointments",
        params={"sender": other_sender},
        json={"patient_id": mine["patient"]["id"], "schedule_id": full_soon.id},
    )
    assert foreign.status_code == 404
    booked = await bot.post(
        "/internal/bot/appointments",
        params={"sender": mother_sender},
        json={"patient_id": mine["patient"]["id"], "schedule_id": full_soon.id},
    )
    assert booked.status_code == 201, booked.text
    appointment = booked.json()["appointment"]
    assert "周敏" in appointment["label"] and "上午" in appointment["label"]

    refused = await bot.post(
        "/internal/bot/appointments",
        params={"sender": other_sender},
        json={"patient_id": theirs["patient"]["id"], "schedule_id": full_soon.id},
    )
    assert refused.status_code == 409
    assert "约满" in refused.json()["message"]
    assert later.id in [o["schedule_id"] for o in refused.json()["alternatives"]]
    empty = (
        await bot.post("/internal/bot/booking/openings", params={"sender": other_sender}, json=query)
    ).json()
    assert empty["openings"] == [] and empty["problem"] == "full"
    assert later.id in [o["schedule_id"] for o in empty["alternatives"]]

    # Listing, cancelling and rescheduling see only the family's own appointments.
    assert (await bot.get("/internal/bot/appointments", params={"sender": other_sender})).json() == {
        "appointments": []
    }
    cancel_foreign = await bot.post(
        f"/internal/bot/appointments/{appointment['id']}/cancel", params={"sender": other_sender}
    )
    assert cancel_foreign.status_code == 404
    moved = await bot.post(
        f"/internal/bot/appointments/{appointment['id']}/reschedule",
        params={"sender": mother_sender},
        json={"schedule_id": later.id},
    )
    assert moved.status_code == 200, moved.text
    listed = (await bot.get("/internal/bot/appointments", params={"sender": mother_sender})).json()
    assert [a["id"] for a in listed["appointments"]] == [moved.json()["appointment"]["id"]]
    async with runtime.db.sessions() as session:
        old = await session.get(Appointment, appointment["id"])
        assert old is not None and old.status == "cancelled"
        counts = dict(
            (
                await session.execute(
                    sa.select(Schedule.id, Schedule.booked_count).where(
                        Schedule.id.in_([full_soon.id, later.id])
                    )
                )
            ).all()
        )
    assert counts == {full_soon.id: 0, later.id: 1}


async def test_dates_in_the_past_or_too_far_are_explained(
    bot: httpx.AsyncClient, runtime: Runtime, kidney: Any
) -> None:
    sender = await new_sender(runtime)
    today = hospital_today(utcnow())
    past = {
        "department_id": kidney.id,
        "date_from": str(today - timedelta(days=3)),
        "date_to": str(today - timedelta(days=3)),
    }
    answer = (await bot.post("/internal/bot/booking/openings", params={"sender": sender}, json=past)).json()
    assert answer["problem"] == "past" and "过去" in answer["message"]
    far = {
        "department_id": kidney.id,
        "date_from": str(today + timedelta(days=90)),
        "date_to": str(today + timedelta(days=90)),
    }
    answer = (await bot.post("/internal/bot/booking/openings", params={"sender": sender}, json=far)).json()
    assert answer["problem"] == "too_far"
    bad = await bot.post(
        "/internal/bot/booking/openings", params={"sender": sender}, json={"department_id": "x"}
    )
    assert bad.status_code in (400, 422)


async def test_the_console_panel_shows_what_the_family_booked(
    bot: httpx.AsyncClient, runtime: Runtime, kidney: Any
) -> None:
    from crm_backend.escalations.views_model import patient_panel

    day = hospital_today(utcnow()) + timedelta(days=5)
    schedule = await make_schedule(runtime, day, "pm", capacity=3, department=kidney, doctor_name="肾二")
    sender = await new_sender(runtime)
    mother = (
        await register(
            bot, sender, relationship="parent", id_number=resident_id("19560101", "118"), name="钱芬"
        )
    ).json()
    booked = await bot.post(
        "/internal/bot/appointments",
        params={"sender": sender},
        json={"patient_id": mother["patient"]["id"], "schedule_id": schedule.id},
    )
    assert booked.status_code == 201
    async with runtime.db.sessions() as session:
        holder = await session.scalar(
            sa.select(WeChatIdentity.patient_id).where(WeChatIdentity.openid == sender.split(":")[1])
        )
        assert holder is not None
        panel = await patient_panel(session, holder, runtime.protector)
    [entry] = panel.records.appointments
    assert entry.status == "已预约"
    assert entry.label.startswith("钱芬 · ") and "下午" in entry.label and "肾内科 肾二" in entry.label


@pytest.mark.parametrize(
    ("text", "department", "relationship", "expert", "half_day", "days_ahead"),
    [
        ("我想挂个号", None, None, False, None, None),
        ("帮我妈约下周三的心内科", "心内科", "parent", False, None, "next wednesday"),
        ("有没有明天上午皮肤科的专家号", "皮肤科", None, True, "am", 1),
        ("给孩子挂儿科", "儿科", "child", False, None, None),
    ],
)
async def test_the_requests_patients_typically_send(
    bot: httpx.AsyncClient,
    runtime: Runtime,
    text: str,
    department: str | None,
    relationship: str | None,
    expert: bool,
    half_day: str | None,
    days_ahead: int | str | None,
) -> None:
    for name, aliases in (("心血管内科", ["心内科"]), ("皮肤科", ["皮肤病科"]), ("儿科", ["小儿科"])):
        async with runtime.db.sessions() as session:
            known = await session.scalar(
                sa.select(sa.func.count()).select_from(Department).where(Department.name == name)
            )
        if not known:
            await make_department(
                runtime, name=name, patient_name=aliases[0] if name == "心血管内科" else name, aliases=aliases
            )
    sender = await new_sender(runtime)
    words = (
        await bot.post("/internal/bot/booking/understand", params={"sender": sender}, json={"text": text})
    ).json()
    assert (words["department"] or {}).get("name") == department
    assert (words["relationship"], words["expert"], words["half_day"]) == (relationship, expert, half_day)
    today = hospital_today(utcnow())
    if days_ahead is None:
        assert words["date_from"] is None
    elif days_ahead == "next wednesday":
        wednesday = today + timedelta(days=7 - today.weekday() + 2)
        assert words["date_from"] == words["date_to"] == wednesday.isoformat()
    else:
        assert words["date_from"] == (today + timedelta(days=int(days_ahead))).isoformat()


async def test_the_reminder_is_worded_for_the_family_that_booked_and_no_one_else(
    bot: httpx.AsyncClient, runtime: Runtime, kidney: Any
) -> None:
    day = hospital_today(utcnow()) + timedelta(days=1)
    schedule = await make_schedule(runtime, day, "am", department=kidney, doctor_name="肾提醒")
    parent, stranger = await new_sender(runtime), await new_sender(runtime)
    child = (
        await register(
            bot, parent, relationship="child", name="林小雨", id_number=resident_id("20150101", "512")
        )
    ).json()
    booked = await bot.post(
        "/internal/bot/appointments",
        params={"sender": parent},
        json={"patient_id": child["patient"]["id"], "schedule_id": schedule.id},
    )
    assert booked.status_code == 201, booked.text
    appointment_id = booked.json()["appointment"]["id"]

    url = f"/internal/bot/appointments/{appointment_id}/reminder"
    said = await bot.get(url, params={"sender": parent})
    assert said.status_code == 200
    text = said.json()["text"]
    assert (
        text.startswith("【就诊提醒】您为林小雨预约的门诊就在明天")
        and "肾内科" in text
        and "上午 08:00" in text
    )
    refused = await bot.get(
        f"/internal/bot/appointments/{appointment_id}/reminder", params={"sender": stranger}
    )
    assert refused.status_code == 404
    assert "林小雨" not in refused.text
