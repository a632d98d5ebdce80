"""Find the patient behind a WeChat identity, creating both on first contact; name it for Rasa."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from crm_backend.patients.models import Patient, WeChatIdentity


def rasa_sender(app_id: str, openid: str) -> str:
    """Rasa's sender id for a WeChat identity. The bot's actions send it back to the CRM, which
    reads it with `read_rasa_sender`, so this is the only place that knows the format."""
    return f"{app_id}:{openid}"


def read_rasa_sender(sender: str) -> tuple[str, str]:
    """(app id, openid) of a sender id made by `rasa_sender`; an app id never contains ':'."""
    app_id, _, openid = sender.partition(":")
    return app_id, openid


async def get_identity(session: AsyncSession, app_id: str, openid: str) -> WeChatIdentity | None:
    return await session.scalar(
        select(WeChatIdentity).where(WeChatIdentity.app_id == app_id, WeChatIdentity.openid == openid)
    )


async def get_or_create_identity(
    session: AsyncSession, app_id: str, openid: str, *, unionid: str | None = None, seen_at: datetime
) -> WeChatIdentity:
    """Safe under concurrency: a second creator loses the unique race and reads the winner's row."""
    identity = await get_identity(session, app_id, openid)
    if identity is None:
        try:
            async with session.begin_nested():
                patient = Patient()
                session.add(patient)
                await session.flush()
                identity = WeChatIdentity(
                    app_id=app_id,
                    openid=openid,
                    unionid=unionid,
                    patient_id=patient.id,
                    subscribed_at=seen_at,
                )
                session.add(identity)
                await session.flush()
        except IntegrityError:
            identity = await get_identity(session, app_id, openid)
            if identity is None:
                raise
    if unionid and not identity.unionid:
        identity.unionid = unionid
    return identity
