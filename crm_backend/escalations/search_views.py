"""Console endpoint for searching conversations by their words (docs/CONSOLE_API.md, "Search")."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy.ext.asyncio import AsyncSession

from crm_backend.audit.service import record as audit
from crm_backend.escalations.search import SearchHitRead, search_messages
from crm_backend.escalations.service import ConsoleError
from crm_backend.staff.deps import CurrentStaff, current_staff, db_session

router = APIRouter(prefix="/api/console", tags=["console"])

Staff = Annotated[CurrentStaff, Depends(current_staff)]
Session = Annotated[AsyncSession, Depends(db_session)]

MAX_QUERY_CHARS = 100


@router.get("/conversation-search")
async def search(
    staff: Staff,
    request: Request,
    session: Session,
    q: Annotated[str, Query(max_length=MAX_QUERY_CHARS)],
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
) -> list[SearchHitRead]:
    """Audited as `conversation.search` with the words searched for: a search reads patients' chats."""
    words = " ".join(q.split())
    if not words:
        raise ConsoleError(400, "say what to search for")
    hits = await search_messages(session, staff, words, limit)
    await audit(
        session,
        staff_id=staff.id,
        action="conversation.search",
        object_type="conversation",
        object_id="search",
        request=request,
        # Which patients' chats the search showed, so the log answers "who read patient X".
        detail={
            "query": words,
            "results": len(hits),
            "patients": sorted({hit.patient.id for hit in hits}),
            "conversations": sorted({hit.conversation_id for hit in hits}),
        },
    )
    await session.commit()
    return hits
