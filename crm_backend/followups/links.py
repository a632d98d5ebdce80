"""Signed links to one check-in's mobile questionnaire (H5 page), sent in template messages.

A link names one check-in, is signed with a key derived from SECRET_KEY (Pallets' itsdangerous, as
the console's device cookies are) and expires after FOLLOWUP_LINK_HOURS: whoever holds the message
can answer that check-in and nothing else. The page still refuses a check-in that is no longer open.
"""

from __future__ import annotations

import hashlib
import hmac

from itsdangerous import BadData, SignatureExpired, URLSafeTimedSerializer

from crm_backend.config import Settings

#: The page's path; the token follows it.
PAGE_PATH = "/followup/q/"


class LinkRefused(ValueError):
    """The link is forged, damaged or expired (`expired` tells which, for the page's wording)."""

    def __init__(self, message: str, *, expired: bool = False) -> None:
        super().__init__(message)
        self.expired = expired


def _serializer(settings: Settings) -> URLSafeTimedSerializer:
    key = hmac.new(settings.secret_key.encode(), b"carebridge follow-up link", hashlib.sha256).digest()
    return URLSafeTimedSerializer(key, salt="followup-checkin")


def checkin_token(settings: Settings, checkin_id: int) -> str:
    return _serializer(settings).dumps({"checkin": checkin_id})


def checkin_url(settings: Settings, checkin_id: int) -> str:
    """The absolute address patients' phones open (PUBLIC_BASE_URL + the page + the token)."""
    return f"{settings.public_base_url.rstrip('/')}{PAGE_PATH}{checkin_token(settings, checkin_id)}"


def read_checkin_token(settings: Settings, token: str) -> int:
    """The check-in id the token names; LinkRefused when forged, damaged or older than allowed."""
    if len(token) > 512:
        raise LinkRefused("link too long")
    try:
        data = _serializer(settings).loads(token, max_age=int(settings.followup_link_hours * 3600))
    except SignatureExpired as error:
        raise LinkRefused("link expired", expired=True) from error
    except BadData as error:
        raise LinkRefused("link not valid") from error
    checkin = data.get("checkin") if isinstance(data, dict) else None
    if not isinstance(checkin, int) or isinstance(checkin, bool) or checkin <= 0:
        raise LinkRefused("link not valid")
    return checkin
