"""Fill departments' triage fields from crm_backend/triage/departments.yml where still empty.

python -m crm_backend.triage.seed      (after migrating and loading departments; `make run` does)
"""

from __future__ import annotations

import asyncio

from crm_backend.config import get_settings
from crm_backend.database.core import Database
from crm_backend.triage.store import seed_departments


async def _main() -> None:
    db = Database(get_settings().database_url)
    try:
        async with db.sessions() as session:
            filled = await seed_departments(session)
            await session.commit()
    finally:
        await db.dispose()
    print(
        f"triage fields filled for {len(filled)} departments" + (f": {', '.join(filled)}" if filled else "")
    )


if __name__ == "__main__":
    asyncio.run(_main())
