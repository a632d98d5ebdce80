"""Labels on conversations: the hospital's shared set, and putting them on and taking them off.

Checks (who may see the conversation) are the caller's; this module keeps names valid and unique
and answers "which labels does each of these conversations carry" in one query.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

from pydantic import BaseModel
from sqlalchemy import Select, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from crm_backend.escalations.label_models import LABEL_MAX_CHARS, ConversationLabel, Label
from crm_backend.escalations.service import ConsoleError


class LabelRead(BaseModel):
    id: int
    name: str


def clean_name(raw: str) -> str:
    """One way to write a name: NFKC (full-width letters become ASCII), spaces collapsed."""
    name = " ".join(unicodedata.normalize("NFKC", raw).split())
    if not name:
        raise ConsoleError(400, "a label needs a name")
    if len(name) > LABEL_MAX_CHARS:
        raise ConsoleError(400, f"a label has at most {LABEL_MAX_CHARS} characters")
    if any(unicodedata.category(char).startswith("C") for char in name):
        raise ConsoleError(400, "a label cannot contain control characters")
    return name


async def all_labels(session: AsyncSession) -> list[LabelRead]:
    rows = (await session.scalars(select(Label).order_by(Label.name, Label.id))).all()
    return [LabelRead(id=row.id, name=row.name) for row in rows]


async def create_label(session: AsyncSession, raw_name: str, staff_id: int) -> Label:
    """Adds the label to `session` (flushed, not committed); 409 if the name exists in any case."""
    name = clean_name(raw_name)
    key = name.casefold()
    if await session.scalar(select(Label.id).where(Label.key == key)) is not None:
        raise ConsoleError(409, f"the label “{name}” already exists")
    label = Label(name=name, key=key, created_by_id=staff_id)
    try:
        async with session.begin_nested():
            session.add(label)
            await session.flush()
    except IntegrityError:  # created by a colleague in the same moment
        raise ConsoleError(409, f"the label “{name}” already exists") from None
    return label


async def existing_label(session: AsyncSession, label_id: int) -> Label:
    label = await session.get(Label, label_id)
    if label is None:
        raise ConsoleError(404, "no such label")
    return label


async def put_on(session: AsyncSession, conversation_id: int, label_id: int, staff_id: int) -> bool:
    """True if the label was added now, False if the conversation already carried it."""
    present = await session.get(ConversationLabel, (conversation_id, label_id))
    if present is not None:
        return False
    try:
        async with session.begin_nested():
            session.add(
                ConversationLabel(conversation_id=conversation_id, label_id=label_id, added_by_id=staff_id)
            )
            await session.flush()
    except IntegrityError:  # a colleague added it in the same moment: the outcome is the same
        return False
    return True


async def take_off(session: AsyncSession, conversation_id: int, label_id: int) -> bool:
    """True if the label was removed now, False if the conversation did not carry it."""
    result = await session.execute(
        delete(ConversationLabel).where(
            ConversationLabel.conversation_id == conversation_id, ConversationLabel.label_id == label_id
        )
    )
    return bool(result.rowcount)


async def labels_of(session: AsyncSession, conversation_ids: Iterable[int]) -> dict[int, list[LabelRead]]:
    """Every given conversation's labels, by name (conversations without any map to [])."""
    ids = sorted(set(conversation_ids))
    found: dict[int, list[LabelRead]] = {conversation_id: [] for conversation_id in ids}
    if not ids:
        return found
    rows = await session.execute(
        select(ConversationLabel.conversation_id, Label.id, Label.name)
        .join(Label, Label.id == ConversationLabel.label_id)
        .where(ConversationLabel.conversation_id.in_(ids))
        .order_by(Label.name, Label.id)
    )
    for conversation_id, label_id, name in rows:
        found[conversation_id].append(LabelRead(id=label_id, name=name))
    return found


def labelled(label_id: int) -> Select[tuple[int]]:
    """The conversations carrying a label, as a subquery for `Column.in_`."""
    return select(ConversationLabel.conversation_id).where(ConversationLabel.label_id == label_id)
