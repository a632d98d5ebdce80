"""Known-device cookies: a browser a staff member has logged in from before, as their own.

After a successful login the browser gets a long-lived, HttpOnly cookie signed with SECRET_KEY
that names the user and a random device id, and is sent only to the login endpoint. Login
throttling counts that browser's failures apart from everyone else's (staff/throttle.py), so a
stranger guessing a user's password cannot lock the user out of the browser they work in. One
cookie per user, so colleagues sharing a ward computer each keep theirs; its name is derived
from the username with the key, so it does not tell who has logged in there.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from itsdangerous import BadData, URLSafeTimedSerializer
from starlette.requests import HTTPConnection
from starlette.responses import Response

from crm_backend.config import Settings

COOKIE_PREFIX = "cb_device_"
#: Browsers send the cookie only here: no other request carries it.
COOKIE_PATH = "/api/console/login"


@dataclass(frozen=True, slots=True)
class KnownDevice:
    username: str
    device_id: str


class DeviceCookies:
    def __init__(self, settings: Settings) -> None:
        # A key of its own, derived from SECRET_KEY, so these signatures mean nothing elsewhere.
        secret = settings.secret_key.encode()
        self._key = hmac.new(secret, b"carebridge known-device cookie", hashlib.sha256).digest()
        self._signer = URLSafeTimedSerializer(self._key, salt="known-device")
        self.max_age = settings.login_device_days * 86400
        self.secure = settings.session_cookie_secure

    @staticmethod
    def _user(username: str) -> str:
        return username.casefold()[:128]

    def cookie_name(self, username: str) -> str:
        digest = hmac.new(self._key, b"name:" + self._user(username).encode(), hashlib.sha256).hexdigest()
        return COOKIE_PREFIX + digest[:20]

    def known_device(self, conn: HTTPConnection, username: str) -> KnownDevice | None:
        """The device this browser is for `username`, or None without a valid, unexpired cookie."""
        value = conn.cookies.get(self.cookie_name(username), "")
        try:
            fields = self._signer.loads(value, max_age=self.max_age)
            user, device_id = str(fields["u"]), str(fields["d"])
        except (BadData, KeyError, TypeError):
            return None
        if user != self._user(username):
            return None
        return KnownDevice(user, device_id)

    def remember(self, response: Response, username: str, device: KnownDevice | None) -> None:
        """Make (or keep) this browser a known device of `username` for LOGIN_DEVICE_DAYS more."""
        user = self._user(username)
        device_id = device.device_id if device is not None else secrets.token_urlsafe(16)
        response.set_cookie(
            self.cookie_name(username),
            self._signer.dumps({"u": user, "d": device_id}),
            max_age=self.max_age,
            path=COOKIE_PATH,
            httponly=True,
            secure=self.secure,
            samesite="strict",
        )
