"""The mobile questionnaire page (H5) and its JSON steps, reached from a template message's link.

`GET /followup/q/{token}` serves the page for the one check-in the signed token names; a forged or
damaged link gets a "链接无效" page (404) and an expired one a page saying how to carry on in chat
(410). The page then asks `GET .../state` for the question to show and posts each answer to
`POST .../answers`; page.py decides everything. Headers as the console's: a strict
Content-Security-Policy (scripts and styles from this origin only, nothing inline), no caching
(`/followup/q/` is among no_store's private prefixes), no referrer (the token is in the address).
No staff reads anything here, so nothing is audited; each answered check-in is logged by id.
"""

from __future__ import annotations

import html
import logging
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from crm_backend.followups import page
from crm_backend.followups.answers import CheckinClosed
from crm_backend.followups.links import PAGE_PATH, LinkRefused, read_checkin_token
from crm_backend.runtime import Runtime

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
SHELL = STATIC_DIR / "questionnaire.html"
#: The only files served under /followup/static/.
ASSETS = {
    "questionnaire.js": "text/javascript; charset=utf-8",
    "questionnaire.css": "text/css; charset=utf-8",
}
INVALID_TEXT = "链接无效。请从公众号消息里重新打开随访链接。"
EXPIRED_TEXT = "链接已过期，请在公众号里回复任意消息继续随访"

router = APIRouter(include_in_schema=False)


#: Same-origin script, style and fetches; nothing inline, nothing from elsewhere, no forms, no frames.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "img-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)


def _headers(cache: str = "no-store") -> dict[str, str]:
    return {
        "Content-Security-Policy": CONTENT_SECURITY_POLICY,
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": cache,
    }


def _runtime(request: Request) -> Runtime:
    return request.app.state.runtime


class _Refused(Exception):
    def __init__(self, status: int, text: str) -> None:
        self.status = status
        self.text = text


def _checkin_id(request: Request, token: str) -> int:
    try:
        return read_checkin_token(_runtime(request).settings, token)
    except LinkRefused as refused:
        log.info("follow-up link refused: %s", refused)
        if refused.expired:
            raise _Refused(410, EXPIRED_TEXT) from None
        raise _Refused(404, INVALID_TEXT) from None


def _message_page(status: int, text: str) -> HTMLResponse:
    """A page with one sentence (the link is refused): no script, the page's own stylesheet."""
    body = f"""<!doctype html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1, viewport-fit=cover">
<title>术后随访</title>
<link rel="stylesheet" href="/followup/static/questionnaire.css">
</head>
<body>
<main class="sheet">
<h1>术后随访</h1>
<p class="notice" id="refused">{html.escape(text)}</p>
</main>
</body>
</html>
"""
    return HTMLResponse(body, status_code=status, headers=_headers())


def _json(data: page.PageStateRead | dict[str, object], status: int = 200) -> JSONResponse:
    content = data.model_dump(mode="json") if isinstance(data, page.PageStateRead) else data
    return JSONResponse(content, status_code=status, headers=_headers())


@router.get(PAGE_PATH + "{token}", response_class=HTMLResponse)
async def questionnaire_page(token: str, request: Request) -> HTMLResponse:
    try:
        checkin_id = _checkin_id(request, token)
    except _Refused as refused:
        return _message_page(refused.status, refused.text)
    async with _runtime(request).db.sessions() as session:
        try:
            await page.state(session, checkin_id)
        except CheckinClosed:
            return _message_page(404, INVALID_TEXT)
    return HTMLResponse(SHELL.read_text(encoding="utf-8"), headers=_headers())


@router.get(PAGE_PATH + "{token}/state")
async def questionnaire_state(
    token: str,
    request: Request,
    question: Annotated[str | None, Query(max_length=40)] = None,
) -> JSONResponse:
    """The step to show: the next question (or `question`, an earlier one to correct) or the end."""
    try:
        checkin_id = _checkin_id(request, token)
        async with _runtime(request).db.sessions() as session:
            return _json(await page.state(session, checkin_id, ask=question))
    except _Refused as refused:
        return _json({"detail": refused.text}, refused.status)
    except CheckinClosed:
        return _json({"detail": INVALID_TEXT}, 404)


@router.post(PAGE_PATH + "{token}/answers")
async def questionnaire_answer(token: str, body: page.AnswerIn, request: Request) -> JSONResponse:
    """One answer: 200 with the next step (or the outcome), 422 with a hint when the value is not
    allowed (nothing stored), 409 with the closed page when the check-in can no longer be answered."""
    try:
        checkin_id = _checkin_id(request, token)
        return _json(await page.submit(_runtime(request), checkin_id, body))
    except _Refused as refused:
        return _json({"detail": refused.text}, refused.status)
    except CheckinClosed:
        return _json({"detail": INVALID_TEXT}, 404)
    except page.AnswerNotAllowed as refused:
        return _json({"detail": refused.hint, "question": refused.question}, 422)
    except page.PageClosed as closed:
        return _json({"detail": closed.state.message, "state": closed.state.model_dump(mode="json")}, 409)


@router.get("/followup/static/{name}")
def questionnaire_asset(name: str) -> Response:
    media_type = ASSETS.get(name)
    if media_type is None:
        raise HTTPException(status_code=404)
    return Response((STATIC_DIR / name).read_bytes(), media_type=media_type, headers=_headers("no-cache"))
