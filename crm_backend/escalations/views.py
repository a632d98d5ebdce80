"""Console endpoints for queues and escalated conversations (docs/CONSOLE_API.md)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_backend.audit.service import record as audit
from crm_backend.conversations.models import Conversation
from crm_backend.database.core import RowId
from crm_backend.escalations import labels
from crm_backend.escalations.models import CannedReply, Escalation, EscalationStatus
from crm_backend.escalations.service import Escalations
from crm_backend.escalations.views_model import (
    CannedReplyRead,
    ConversationViewRead,
    MessageRead,
    NoteRead,
    QueueItemRead,
    QueueRead,
    TeamRef,
    conversation_view,
    message_view,
    note_view,
    queue_item,
)
from crm_backend.staff.deps import CurrentStaff, current_staff, db_session
from crm_backend.staff.models import SUPERVISING_ROLES, Team

router = APIRouter(prefix="/api/console", tags=["console"])

Staff = Annotated[CurrentStaff, Depends(current_staff)]
Session = Annotated[AsyncSession, Depends(db_session)]


class TextIn(BaseModel):
    text: str = Field(min_length=1, max_length=2000)


class TransferIn(BaseModel):
    team_id: RowId | None = None
    staff_id: RowId | None = None
    note: str | None = Field(default=None, max_length=1000)


class CannedIn(BaseModel):
    title: str = Field(min_length=1, max_length=64)
    text: str = Field(min_length=1, max_length=2000)


def _escalations(request: Request) -> Escalations:
    return Escalations(request.app.state.runtime)


def _require_supervisor(staff: CurrentStaff) -> None:
    if staff.role not in SUPERVISING_ROLES:
        raise HTTPException(403, "supervisors only")


@router.get("/queues")
async def queues(
    staff: Staff, request: Request, session: Session, label: RowId | None = None
) -> list[QueueRead]:
    """`label`: only conversations carrying that label (404 for a label that does not exist)."""
    now = request.app.state.runtime.clock()
    if label is not None:
        await labels.existing_label(session, label)
    teams = (await session.scalars(select(Team).order_by(Team.name))).all()
    result = []
    for team in teams:
        if not staff.may_access_team(team.id):
            continue
        query = (
            select(Escalation)
            .where(Escalation.team_id == team.id, Escalation.status != EscalationStatus.RESOLVED)
            .order_by(Escalation.priority_rank, Escalation.created_at)
        )
        if label is not None:
            query = query.where(Escalation.conversation_id.in_(labels.labelled(label)))
        open_items = (await session.scalars(query)).all()
        result.append(
            QueueRead(
                team=TeamRef(id=team.id, name=team.name),
                items=[await queue_item(session, e, now) for e in open_items],
            )
        )
    return result


@router.post("/escalations/{escalation_id}/claim")
async def claim(escalation_id: RowId, staff: Staff, request: Request, session: Session) -> QueueItemRead:
    escalation = await _escalations(request).claim(escalation_id, staff)
    return await queue_item(session, escalation)


async def _visible(
    request: Request, session: AsyncSession, conversation_id: RowId, staff: CurrentStaff, action: str
) -> Conversation:
    return await _escalations(request).visible_conversation(session, conversation_id, staff, action)


@router.get("/conversations/{conversation_id}")
async def view_conversation(
    conversation_id: RowId, staff: Staff, request: Request, session: Session
) -> ConversationViewRead:
    # Read under the patient rule: a chat never escalated is opened from the patient's history.
    conversation = await _escalations(request).readable_conversation(session, conversation_id, staff)
    view = await conversation_view(session, conversation, request.app.state.runtime.protector)
    await audit(
        session,
        staff_id=staff.id,
        action="conversation.view",
        object_type="conversation",
        object_id=str(conversation_id),
        patient_id=conversation.patient_id,
        request=request,
        detail={"escalated": view.escalation is not None},
    )
    await session.commit()
    return view


@router.post("/conversations/{conversation_id}/messages", status_code=201)
async def reply(
    conversation_id: RowId, body: TextIn, staff: Staff, request: Request, session: Session
) -> MessageRead:
    message = await _escalations(request).reply(conversation_id, staff, body.text)
    return await message_view(session, message)


@router.post("/conversations/{conversation_id}/notes", status_code=201)
async def add_note(
    conversation_id: RowId, body: TextIn, staff: Staff, request: Request, session: Session
) -> NoteRead:
    note = await _escalations(request).add_note(conversation_id, staff, body.text)
    return await note_view(session, note)


@router.post("/conversations/{conversation_id}/typing", status_code=204)
async def typing(conversation_id: RowId, staff: Staff, request: Request, session: Session) -> Response:
    conversation = await _visible(request, session, conversation_id, staff, "conversation.typing")
    team_id = await session.scalar(
        select(Escalation.team_id)
        .where(Escalation.conversation_id == conversation.id)
        .order_by(Escalation.id.desc())
    )
    await _escalations(request).events.publish(
        {
            "type": "typing",
            "conversation_id": conversation_id,
            "team_id": team_id,
            "who": {"kind": "agent", "id": staff.id, "display_name": staff.display_name},
        }
    )
    return Response(status_code=204)


@router.post("/conversations/{conversation_id}/transfer")
async def transfer(
    conversation_id: RowId, body: TransferIn, staff: Staff, request: Request, session: Session
) -> QueueItemRead:
    escalation = await _escalations(request).transfer(
        conversation_id, staff, team_id=body.team_id, staff_id=body.staff_id, note=body.note
    )
    return await queue_item(session, escalation)


@router.post("/conversations/{conversation_id}/resolve")
async def resolve(conversation_id: RowId, staff: Staff, request: Request, session: Session) -> QueueItemRead:
    escalation = await _escalations(request).resolve(conversation_id, staff)
    return await queue_item(session, escalation)


@router.get("/canned-replies")
async def canned_replies(staff: Staff, session: Session) -> list[CannedReplyRead]:
    rows = (await session.scalars(select(CannedReply).order_by(CannedReply.title))).all()
    return [CannedReplyRead(id=r.id, title=r.title, text=r.text) for r in rows]


@router.post("/canned-replies", status_code=201)
async def add_canned_reply(body: CannedIn, staff: Staff, session: Session) -> CannedReplyRead:
    _require_supervisor(staff)
    reply = CannedReply(title=body.title, text=body.text, created_by_id=staff.id)
    session.add(reply)
    await session.commit()
    return CannedReplyRead(id=reply.id, title=reply.title, text=reply.text)


@router.delete("/canned-replies/{reply_id}", status_code=204)
async def delete_canned_reply(reply_id: RowId, staff: Staff, session: Session) -> Response:
    _require_supervisor(staff)
    reply = await session.get(CannedReply, reply_id)
    if reply is None:
        raise HTTPException(404, "no such canned reply")
    await session.delete(reply)
    await session.commit()
    return Response(status_code=204)
