"""Console endpoints for labels on conversations (docs/CONSOLE_API.md, "Labels")."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_backend.audit.service import record as audit
from crm_backend.conversations.models import Conversation
from crm_backend.database.core import RowId
from crm_backend.escalations import labels
from crm_backend.escalations.labels import LabelRead
from crm_backend.escalations.models import Escalation
from crm_backend.escalations.service import ConsoleError, Escalations
from crm_backend.realtime.events import ConsoleEvents
from crm_backend.staff.deps import CurrentStaff, current_staff, db_session

router = APIRouter(prefix="/api/console", tags=["console"])

Staff = Annotated[CurrentStaff, Depends(current_staff)]
Session = Annotated[AsyncSession, Depends(db_session)]


class LabelIn(BaseModel):
    #: Checked again after normalising (labels.clean_name); the bound here only refuses huge bodies.
    name: str = Field(min_length=1, max_length=200)


class ConversationLabelsRead(BaseModel):
    """A conversation's labels after a change; also the body of `conversation.labels` events."""

    conversation_id: int
    labels: list[LabelRead]


def _events(request: Request) -> ConsoleEvents:
    runtime = request.app.state.runtime
    return ConsoleEvents(runtime.redis, runtime.settings)


async def _visible(
    request: Request, session: AsyncSession, conversation_id: int, staff: CurrentStaff, action: str
) -> Conversation:
    """Labels are for the chats a team works: the rule of `visible_conversation`, refusals audited
    under the label action."""
    escalations = Escalations(request.app.state.runtime)
    return await escalations.visible_conversation(session, conversation_id, staff, action)


@router.get("/labels")
async def list_labels(staff: Staff, session: Session) -> list[LabelRead]:
    return await labels.all_labels(session)


@router.post("/labels", status_code=201)
async def create_label(body: LabelIn, staff: Staff, request: Request, session: Session) -> LabelRead:
    label = await labels.create_label(session, body.name, staff.id)
    await audit(
        session,
        staff_id=staff.id,
        action="label.create",
        object_type="label",
        object_id=label.id,
        request=request,
        detail={"name": label.name},
    )
    await session.commit()
    created = LabelRead(id=label.id, name=label.name)
    # Every console offers the same set: the event is for everyone (realtime/ws.py, visible_to).
    await _events(request).publish({"type": "label.created", "team_id": None, "label": created.model_dump()})
    return created


async def _changed(
    request: Request,
    session: AsyncSession,
    staff: CurrentStaff,
    conversation: Conversation,
    label: labels.Label,
    action: str,
) -> ConversationLabelsRead:
    """Audit the change, commit it, tell the consoles that see the conversation, answer its labels."""
    await audit(
        session,
        staff_id=staff.id,
        action=action,
        object_type="conversation",
        object_id=conversation.id,
        patient_id=conversation.patient_id,
        request=request,
        detail={"label_id": label.id, "name": label.name},
    )
    await session.commit()
    answer = await _current(session, conversation.id)
    team_id = await session.scalar(
        select(Escalation.team_id)
        .where(Escalation.conversation_id == conversation.id)
        .order_by(Escalation.id.desc())
        .limit(1)
    )
    event: dict[str, Any] = {"type": "conversation.labels", "team_id": team_id, **answer.model_dump()}
    await _events(request).publish(event)
    return answer


async def _current(session: AsyncSession, conversation_id: int) -> ConversationLabelsRead:
    found = await labels.labels_of(session, [conversation_id])
    return ConversationLabelsRead(conversation_id=conversation_id, labels=found[conversation_id])


@router.put("/conversations/{conversation_id}/labels/{label_id}")
async def put_label_on(
    conversation_id: RowId, label_id: RowId, staff: Staff, request: Request, session: Session
) -> ConversationLabelsRead:
    conversation = await _visible(request, session, conversation_id, staff, "conversation.label.add")
    label = await labels.existing_label(session, label_id)
    if not await labels.put_on(session, conversation_id, label_id, staff.id):
        return await _current(session, conversation_id)  # already there: nothing changed
    return await _changed(request, session, staff, conversation, label, "conversation.label.add")


@router.delete("/conversations/{conversation_id}/labels/{label_id}")
async def take_label_off(
    conversation_id: RowId, label_id: RowId, staff: Staff, request: Request, session: Session
) -> ConversationLabelsRead:
    conversation = await _visible(request, session, conversation_id, staff, "conversation.label.remove")
    label = await labels.existing_label(session, label_id)
    if not await labels.take_off(session, conversation_id, label_id):
        raise ConsoleError(404, "this conversation does not carry that label")
    return await _changed(request, session, staff, conversation, label, "conversation.label.remove")
