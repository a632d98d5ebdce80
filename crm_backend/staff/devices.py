"""Known-device cookies: a browser a staff member has logged in from before, as their own.

After a successful login the browser gets a long-lived, HttpOnly cookie signed with SECRET_KEY
that names the user and a random device id, and is sent only to the login endpoint. Login
throttling counts that browser's failures apart from everyone else's (staff/throttle.py), so a
stranger guessing a user's password cannot lock the user out of the browser they work in. One
cookie per user, so colleagues sharing a ward computer each keep theirs; its name is derived
from the username with the key, so it does not tell who has logged in there.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass

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


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class DeviceCookies:
    def __init__(self, settings: Settings) -> None:
        # A key of its own, derived from SECRET_KEY, so these signatures mean nothing elsewhere.
        secret = settings.secret_key.encode()
        self._key = hmac.new(secret, b"carebridge known-device cookie", hashlib.sha256).digest()
        self.max_age = settings.login_device_days * 86400
        self.secure = settings.session_cookie_secure

    @staticmethod
    def _user(username: str) -> str:
        return username.casefold()[:128]

    def cookie_name(self, username: str) -> str:
        digest = hmac.new(self._key, b"name:" + self._user(username).encode(), hashlib.sha256).hexdigest()
        return COOKIE_PREFIX + digest[:20]

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self._key, payload.encode(), hashlib.sha256).digest())

    def known_device(self, conn: HTTPConnection, username: str) -> KnownDevice | None:
        """The device this browser is for `username`, or None without a valid, unexpired cookie."""
        value = conn.cookies.get(self.cookie_name(username), "")
        payload, _, signature = value.partition(".")
        if not payload or not hmac.compare_digest(signature.encode(), self._sign(payload).encode()):
            return None
        try:
            fields = json.loads(_unb64(payload))
            user, device_id, issued = str(fields["u"]), str(fields["d"]), float(fields["t"])
        except (ValueError, KeyError, TypeError):
            return None
        if user != self._user(username) or time.time() - issued > self.max_age:
            return None
        return KnownDevice(user, device_id)

    def remember(self, response: Response, username: str, device: KnownDevice | None) -> None:
        """Make (or keep) this browser a known device of `username` for LOGIN_DEVICE_DAYS more."""
        user = self._user(username)
        device_id = device.device_id if device is not None else secrets.token_urlsafe(16)
        payload = _b64(json.dumps({"u": user, "d": device_id, "t": int(time.time())}).encode())
        response.set_cookie(
            self.cookie_name(username),
            f"{payload}.{self._sign(payload)}",
            max_age=self.max_age,
            path=COOKIE_PATH,
            httponly=True,
            secure=self.secure,
            samesite="strict",
        )
