"""Serves the staff console page and its script and stylesheet.

The page is static: everything it shows comes from the JSON API in `docs/CONSOLE_API.md`, rendered
in the browser with `textContent` only. Its Content-Security-Policy admits scripts and styles from
this origin alone (no inline code, no other hosts), so markup smuggled into a patient message cannot
run even if it ever reached the DOM as markup.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import HTMLResponse, Response

STATIC_DIR = Path(__file__).parent / "static"
PAGE_PATH = STATIC_DIR / "console.html"
_MEDIA_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}


def _assets() -> dict[str, str]:
    """The script modules (console.js and js/*.js) and the stylesheet, by path under static/.

    Listed once at start-up, so a request can only ever name one of these files: nothing else under
    the package (and no `..`) is reachable. Module scripts must come with a JavaScript media type.
    """
    files = [*STATIC_DIR.glob("*.*"), *STATIC_DIR.glob("js/*.js")]
    return {
        f.relative_to(STATIC_DIR).as_posix(): _MEDIA_TYPES[f.suffix]
        for f in files
        if f.suffix in _MEDIA_TYPES
    }


#: The only files served under /console/static/, with their media types.
ASSETS = _assets()

router = APIRouter()


def content_security_policy() -> str:
    """Same-origin scripts, styles, fetches and WebSockets; nothing inline, nothing from elsewhere.

    The same for every request: nothing the client sends (not even Host) is written into it. CSP
    level 3 lets 'self' match ws:/wss: on the page's own host (every browser the console supports).
    """
    return "; ".join(
        [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "connect-src 'self'",
            "img-src 'self' data:",
            "font-src 'self'",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ]
    )


def _security_headers(cache: str) -> dict[str, str]:
    return {
        "Content-Security-Policy": content_security_policy(),
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": cache,
    }


@router.get("/console", response_class=HTMLResponse, include_in_schema=False)
def console_page() -> HTMLResponse:
    html = PAGE_PATH.read_text(encoding="utf-8")
    return HTMLResponse(html, headers=_security_headers("no-store"))


@router.get("/console/static/{name:path}", include_in_schema=False)
def console_asset(name: str) -> Response:
    media_type = ASSETS.get(name)
    if media_type is None:
        raise HTTPException(status_code=404)
    body = (STATIC_DIR / name).read_bytes()
    # no-cache: the browser revalidates, so a deploy is picked up by the next page load.
    return Response(body, media_type=media_type, headers=_security_headers("no-cache"))
