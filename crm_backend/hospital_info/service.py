"""Which of the hospital's answers fits a patient's question, and where the answers come from.

The entries live in the database (staff edit them); the first read of an empty table fills it
from the reviewed data file `hospital_info.yml`. A question goes to the entry whose keywords cover
most of its characters ("停车场在哪": 停车场 covers more than 在哪).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from crm_backend.hospital_info.models import HospitalInfoEntry

DATA_FILE = Path(__file__).with_name("hospital_info.yml")
PHONE_PLACEHOLDER = "{service_phone}"
NOT_IN_DATA = (
    "这个问题我这里暂时没有现成的答案。您可以拨打医院服务电话{service_phone}咨询，"
    "或回复“人工”由工作人员为您解答。"
)


@dataclass(frozen=True, slots=True)
class Entry:
    key: str
    title: str
    keywords: tuple[str, ...]
    answer: str


def load_data(path: Path = DATA_FILE) -> tuple[str, list[Entry]]:
    """The data file's version and entries."""
    raw: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    entries = [
        Entry(e["key"], e["title"], tuple(str(k) for k in e["keywords"]), e["answer"]) for e in raw["entries"]
    ]
    return str(raw["version"]), entries


async def seed_if_empty(session: AsyncSession) -> bool:
    """Fill an empty table from the data file (and commit); what staff edited is never touched."""
    if await session.scalar(select(func.count()).select_from(HospitalInfoEntry)):
        return False
    version, entries = load_data()
    for position, entry in enumerate(entries):
        session.add(
            HospitalInfoEntry(
                key=entry.key,
                title=entry.title,
                keywords=list(entry.keywords),
                answer=entry.answer,
                position=position,
                version=version,
            )
        )
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()  # another request seeded it a moment ago: theirs stands
        return False
    return True


async def hospital_entries(session: AsyncSession) -> list[HospitalInfoEntry]:
    await seed_if_empty(session)
    rows = await session.scalars(select(HospitalInfoEntry).order_by(HospitalInfoEntry.position))
    return list(rows.all())


def covered(text: str, keywords: Sequence[str]) -> int:
    """How many characters of the question the keywords cover (overlaps count once)."""
    text = text.casefold()
    spots: set[int] = set()
    for keyword in keywords:
        word = keyword.casefold()
        if not word:
            continue
        start = text.find(word)
        while start != -1:
            spots.update(range(start, start + len(word)))
            start = text.find(word, start + 1)
    return len(spots)


def best_entry(text: str, entries: Sequence[HospitalInfoEntry]) -> HospitalInfoEntry | None:
    scored = [(covered(text, entry.keywords or []), -i, entry) for i, entry in enumerate(entries)]
    best = max(scored, default=None, key=lambda s: (s[0], s[1]))
    return best[2] if best and best[0] > 0 else None


def answer_for(text: str, entries: Sequence[HospitalInfoEntry], service_phone: str) -> tuple[str | None, str]:
    """(the entry's key or None, the text the patient reads)."""
    entry = best_entry(text, entries)
    answer = entry.answer if entry else NOT_IN_DATA
    return (entry.key if entry else None), answer.replace(PHONE_PLACEHOLDER, service_phone)
