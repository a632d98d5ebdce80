"""The web app: WeChat webhooks, health, the staff console, and (without real credentials) the
WeChat sandbox and the simulator."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse

from channels.wechat_oa.security import OfficialAccountKeys
from channels.wechat_oa.webhook import router as oa_router
from crm_backend import domains, health
from crm_backend.body_limit import BodyLimit
from crm_backend.config import Settings, get_settings
from crm_backend.conversations.inbound import InboundWriter
from crm_backend.escalations.service import ConsoleError
from crm_backend.logs import configure_logging
from crm_backend.no_store import NoStore
from crm_backend.runtime import Runtime, freeze_startup_objects

#: Seconds a thread may hold the GIL before another may run. The default (5 ms) adds milliseconds to
#: every hand-off between the event loop and a worker thread (wechatpy crypto, aiosqlite).
GIL_SWITCH_INTERVAL = 0.0005


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from crm_backend.appointments.dates import warm_up as warm_up_dates
        from crm_backend.realtime.events import ConsoleEvents
        from crm_backend.realtime.hub import Hub
        from crm_backend.staff.service import ensure_first_admin

        runtime = Runtime.create(settings)
        domains.subscribe_listeners(runtime)
        app.state.runtime = runtime
        await runtime.inbound.ensure_group()
        writer = InboundWriter(runtime)
        writer.start()
        app.state.inbound_writer = writer
        app.state.events = ConsoleEvents(runtime.redis, settings)
        hub = Hub(runtime.redis, settings.key("console", "live"))
        hub.start()
        app.state.console_hub = hub
        await ensure_first_admin(settings, runtime.db)
        # The Chinese date parser loads its dictionaries on first use: not on a patient's message.
        await asyncio.to_thread(warm_up_dates)
        freeze_startup_objects()
        try:
            yield
        finally:
            await hub.stop()
            await writer.stop()
            await runtime.close()

    # The API description lists every internal route: never public (_include_api_docs).
    app = FastAPI(title="CareBridge", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.settings = settings
    app.add_middleware(NoStore)
    app.add_middleware(BodyLimit)
    app.state.oa_keys = OfficialAccountKeys(settings.oa_appid, settings.oa_token, settings.oa_aes_key)
    add_error_answers(app)
    app.include_router(oa_router)
    app.include_router(health.router)
    _include_console(app)
    _include_bot_api(app)
    _include_followup_page(app)
    if settings.sandbox_enabled:
        from channels.sandbox.simulator import router as simulator_router
        from channels.sandbox.wechat_api import router as sandbox_router

        app.include_router(sandbox_router)
        app.include_router(simulator_router)
        _include_api_docs(app)
    return app


def _include_api_docs(app: FastAPI) -> None:
    """The API description and its browsable page, for logged-in admins of a sandbox deployment
    only: a hospital's deployment with real credentials serves neither."""
    from fastapi import Depends
    from fastapi.openapi.docs import get_swagger_ui_html

    from crm_backend.staff.deps import require_roles
    from crm_backend.staff.models import StaffRole

    admins_only = [Depends(require_roles(StaffRole.admin))]

    @app.get("/api/openapi.json", include_in_schema=False, dependencies=admins_only)
    async def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/api/docs", include_in_schema=False, dependencies=admins_only)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/api/openapi.json", title="CareBridge API")


def _include_console(app: FastAPI) -> None:
    from crm_backend.appointments.views import router as appointments_router
    from crm_backend.complaints.report_views import router as complaints_report_router
    from crm_backend.complaints.views import router as complaints_router
    from crm_backend.console.views import router as console_page_router
    from crm_backend.escalations.label_views import router as labels_router
    from crm_backend.escalations.message_views import router as patient_messages_router
    from crm_backend.escalations.report_views import router as report_router
    from crm_backend.escalations.search_views import router as search_router
    from crm_backend.escalations.views import router as escalations_router
    from crm_backend.followups.enrolment_views import router as followup_enrolments_router
    from crm_backend.followups.his_views import router as his_router
    from crm_backend.followups.plan_views import router as followup_plans_router
    from crm_backend.followups.report_views import router as followup_report_router
    from crm_backend.followups.worklist_views import router as followup_worklists_router
    from crm_backend.hospital_info.views import router as hospital_info_router
    from crm_backend.patient_record.enrolment_views import router as enrol_router
    from crm_backend.patient_record.views import router as patients_router
    from crm_backend.realtime.ws import router as ws_router
    from crm_backend.staff.audit_views import router as audit_router
    from crm_backend.staff.views import router as staff_router
    from crm_backend.triage.decision_views import router as triage_decisions_router
    from crm_backend.triage.views import router as triage_router

    for router in (
        staff_router,
        audit_router,
        escalations_router,
        report_router,
        followup_report_router,
        labels_router,
        search_router,
        patient_messages_router,
        patients_router,
        appointments_router,
        triage_router,
        triage_decisions_router,
        hospital_info_router,
        followup_plans_router,
        followup_worklists_router,
        enrol_router,
        followup_enrolments_router,
        complaints_router,
        complaints_report_router,
        his_router,
        ws_router,
        console_page_router,
    ):
        app.include_router(router)


def _include_followup_page(app: FastAPI) -> None:
    """The mobile questionnaire page patients open from a follow-up template message (signed link)."""
    from crm_backend.followups.page_views import router as followup_page_router

    app.include_router(followup_page_router)


def _include_bot_api(app: FastAPI) -> None:
    """What the Rasa action server calls (token-protected): patient records, booking, triage and
    hospital information."""
    from crm_backend.appointments.bot_views import router as booking_router
    from crm_backend.complaints.bot_views import router as complaints_router
    from crm_backend.followups.bot_views import router as followups_router
    from crm_backend.hospital_info.bot_views import router as hospital_info_router
    from crm_backend.patients.bot_views import router as patients_router
    from crm_backend.triage.bot_views import router as triage_router

    app.include_router(patients_router)
    app.include_router(booking_router)
    app.include_router(triage_router)
    app.include_router(hospital_info_router)
    app.include_router(followups_router)
    app.include_router(complaints_router)


def add_error_answers(app: FastAPI) -> None:
    """How the web app answers bad input and refused console actions; tests' API apps use it too."""
    app.add_exception_handler(RequestValidationError, _bad_request)
    app.add_exception_handler(ConsoleError, _console_error)


async def _bad_request(request: Request, exc: Exception) -> JSONResponse:
    """The console API answers malformed input with 400, as its contract says (not FastAPI's 422)."""
    assert isinstance(exc, RequestValidationError)
    errors = [{"loc": list(error.get("loc", ())), "msg": str(error.get("msg", ""))} for error in exc.errors()]
    return JSONResponse({"detail": "invalid request", "errors": errors}, status_code=400)


async def _console_error(request: Request, exc: Exception) -> JSONResponse:
    """Escalation rules refuse with a status and a reason (409 lost a race, 403 another team...)."""
    assert isinstance(exc, ConsoleError)
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)


def build() -> FastAPI:
    """The app factory crm_backend/web.py hands to uvicorn (the only way the web app is started)."""
    configure_logging(get_settings().log_level)
    sys.setswitchinterval(GIL_SWITCH_INTERVAL)
    return create_app()
