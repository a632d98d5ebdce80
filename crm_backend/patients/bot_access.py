"""Who may call the CRM's bot API (/internal/bot/...): the Rasa action server, with a shared token.

The action server lives in Rasa's own virtualenv and never touches the database; it reaches patient
records and schedules through this API. Every request names the WeChat identity the dialogue belongs
to (Rasa's sender id, "<app id>:<openid>"), and answers are limited to what that identity may see.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status

from crm_backend.patients.models import WeChatIdentity
from crm_backend.patients.service import get_identity, read_rasa_sender
from crm_backend.staff.deps import DbSession, runtime_of

BOT_API_PREFIX = "/internal/bot"


def require_bot_token(request: Request) -> None:
    """401 unless `Authorization: Bearer <INTERNAL_API_TOKEN>`; with no token configured, always 401."""
    expected = runtime_of(request).settings.bot_api_token
    sent = request.headers.get("authorization", "")
    scheme, _, token = sent.partition(" ")
    if (
        not expected
        or scheme.lower() != "bearer"
        or not hmac.compare_digest(token.encode(), expected.encode())
    ):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "bot API token missing or wrong")


BotToken = Depends(require_bot_token)


async def identity_of(session: DbSession, sender: str) -> WeChatIdentity:
    """The WeChat identity behind a Rasa sender id; 404 for anyone we have never heard from."""
    app_id, openid = read_rasa_sender(sender)
    identity = await get_identity(session, app_id, openid) if app_id and openid else None
    if identity is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "unknown sender")
    return identity


SenderIdentity = Annotated[WeChatIdentity, Depends(identity_of)]
