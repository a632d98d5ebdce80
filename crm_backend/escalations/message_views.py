"""Console endpoints for writing to a patient first: WeChat's window as staff see it, and a message
staff start from any conversation they may read (docs/CONSOLE_API.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from crm_backend.conversations.reply_window import WindowState
from crm_backend.database.core import RowId
from crm_backend.escalations.service import Escalations
from crm_backend.escalations.views_model import MessageRead, message_view
from crm_backend.staff.deps import CurrentStaff, current_staff, db_session

router = APIRouter(prefix="/api/console", tags=["console"])

Staff = Annotated[CurrentStaff, Depends(current_staff)]
Session = Annotated[AsyncSession, Depends(db_session)]


class ReplyWindowRead(BaseModel):
    """WeChat's customer-service window of the conversation's WeChat identity."""

    state: WindowState
    #: The patient's last message (null: never wrote).
    opened_at: datetime | None
    #: When messages stop being accepted (48 hours after it, less a 10-minute margin).
    closes_at: datetime | None
    sent: int
    limit: int
    remaining: int


class StartMessageIn(BaseModel):
    text: str = Field(min_length=1, max_length=2000)


class StartedMessageRead(BaseModel):
    #: The conversation the message went into: the identity's current one, perhaps not the one read.
    conversation_id: int
    message: MessageRead


def _escalations(request: Request) -> Escalations:
    return Escalations(request.app.state.runtime)


@router.get("/conversations/{conversation_id}/window")
async def window(conversation_id: RowId, staff: Staff, request: Request, session: Session) -> ReplyWindowRead:
    escalations = _escalations(request)
    conversation = await escalations.readable_conversation(session, conversation_id, staff)
    current = await escalations.window_of(session, conversation)
    return ReplyWindowRead(
        state=current.state,
        opened_at=current.opened_at,
        closes_at=current.closes_at,
        sent=current.sent,
        limit=current.limit,
        remaining=current.remaining,
    )


@router.post("/conversations/{conversation_id}/start-message", status_code=201)
async def start_message(
    conversation_id: RowId, body: StartMessageIn, staff: Staff, request: Request, session: Session
) -> StartedMessageRead:
    message = await _escalations(request).start_message(conversation_id, staff, body.text, request=request)
    return StartedMessageRead(
        conversation_id=message.conversation_id, message=await message_view(session, message)
    )
