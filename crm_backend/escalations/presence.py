"""Staff who closed the console without logging out are marked away, so no chat waits on them.

Open console pages refresh a mark in Redis (crm_backend/realtime/ws.py); staff whose last page
went quiet are set from online to away. Staff who never opened the page (API clients) have no
mark and are left alone.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

from sqlalchemy import select

from crm_backend.realtime.events import ConsoleEvents
from crm_backend.runtime import Runtime
from crm_backend.staff.models import Presence, Staff, TeamMembership

log = logging.getLogger(__name__)


async def mark_absent_staff(runtime: Runtime) -> list[int]:
    key = runtime.settings.key("console", "open")
    cutoff = time.time() - runtime.settings.console_gone_after_seconds
    gone = [int(staff_id) for staff_id in await runtime.redis.zrangebyscore(key, 0, cutoff)]
    if not gone:
        return []
    await runtime.redis.zremrangebyscore(key, 0, cutoff)
    now = datetime.now(UTC)
    changed: list[tuple[Staff, list[int]]] = []
    async with runtime.db.sessions() as session:
        for staff in (await session.scalars(select(Staff).where(Staff.id.in_(gone)))).all():
            if staff.presence != Presence.online:
                continue
            staff.presence = Presence.away
            staff.presence_at = now
            memberships = await session.scalars(
                select(TeamMembership.team_id).where(TeamMembership.staff_id == staff.id)
            )
            team_ids = list(memberships.all())
            changed.append((staff, team_ids))
        await session.commit()
    events = ConsoleEvents(runtime.redis, runtime.settings)
    for staff, team_ids in changed:
        log.info("staff %s closed the console without logging out: now away", staff.id)
        await events.publish(
            {
                "type": "presence",
                "staff_id": staff.id,
                "display_name": staff.display_name,
                "presence": str(Presence.away),
                "team_ids": team_ids,
                "at": now.isoformat(),
            }
        )
    return [staff.id for staff, _ in changed]
