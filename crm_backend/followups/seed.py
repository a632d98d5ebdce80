"""Create the shipped follow-up plans (shipped_plans.yml) as version 1 where absent.

python -m crm_backend.followups.seed      (after migrating; `make run` does). Plans staff have
created or changed are left as they are.
"""

from __future__ import annotations

import asyncio

from crm_backend.config import get_settings
from crm_backend.database.core import Database
from crm_backend.followups.plan_service import current_versions, definition_of, ensure_shipped_plans


async def _main() -> None:
    db = Database(get_settings().database_url)
    try:
        async with db.sessions() as session:
            await ensure_shipped_plans(session)
            await session.commit()
            versions = await current_versions(session)
    finally:
        await db.dispose()
    listed = ", ".join(f"{definition_of(v).code} v{v.version}" for v in versions)
    print(f"follow-up plans in use: {listed or 'none'}")


if __name__ == "__main__":
    asyncio.run(_main())
