"""Complaints in the fault suite (bench/faults.py): patients who file one complaint through the
chat's multi-turn intake while a fault window runs, and the books that say whether each complaint
the patient confirmed was registered exactly once.

A complaint patient is silent until their window starts, then answers what the bot asked last, as
a patient would: the story, when, where, 跳过, what they want, 确认 on the read-back, and 确认 again
when the bot says the CRM could not be reached. They wait for the bot's next message before
writing again. Before their first 确认 an intake the bot lost (its tracker gone with Redis's
data) is started again with 我要投诉; after it, only when the bot says nothing was submitted (the
tracker went between the read-back and the 确认), so every case of the patient belongs to an
intake they confirmed and a second case is a duplicate.

Books per intake: started (the first 我要投诉 acknowledged), confirmed (a 确认 acknowledged),
registered once (exactly one case of the patient, and every case number the patient read is it);
lost (confirmed and no case, unless the 确认 turn was given up and escalated or staff held the chat);
duplicated (more than one case); and, for a case, whether its number reached the patient.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

#: What the complaint patient says to each of the bot's questions (bot/dialogs/complaints.py).
ANSWERS = (
    ("已登记，编号", ""),
    ("稍后回复“确认”再试", "确认"),
    # The bot lost the intake (its tracker gone with Redis's data) and says nothing was submitted.
    ("还没有提交成功", "我要投诉"),
    ("我核对一下记录", "确认"),
    ("请您具体说说发生了什么事", "门诊排队等了两个小时，叫号也没人解释"),
    ("大概是什么时候发生的", "昨天上午"),
    ("哪个科室或病区", "门诊三楼皮肤科"),
    ("涉及的工作人员您知道是谁吗", "跳过"),
    ("您希望医院怎么处理", "希望改进叫号"),
)
START = "我要投诉"
CONFIRM = "确认"
#: A patient gives up after this many messages (an intake takes seven).
MOST_PUSHES = 14
#: Seconds a patient who read something other than the intake's question waits for more before
#: starting the intake again.
RESTART_AFTER = 8.0
_CASE_NUMBER = re.compile(r"TS-\d{8}-\d{4}")


def next_words(received: list[str], confirmed: bool) -> str | None:
    """What the patient writes next, given what they read last; None when they are done."""
    last = received[-1] if received else ""
    for asked, answer in ANSWERS:
        if asked in last:
            return answer or None
    return None if confirmed else START


@dataclass
class Intake:
    """One complaint patient's intake, filed in the window named."""

    openid: str
    window: str
    started: bool = False
    confirmed: bool = False
    #: The pushes the patient sent: (wechat msg id, text, acknowledged).
    pushes: list[tuple[int, str, bool]] = field(default_factory=list)


#: What the books count per window, in the report's order.
COUNTS = ("started", "confirmed", "registered once", "lost", "duplicated")


@dataclass
class ComplaintTally:
    #: COUNTS, and "number not read": registered once, the number never reached the patient
    #: (WeChat refused or was away, or the answer to 确认 was lost with a worker).
    counts: Counter[str] = field(default_factory=Counter)
    marked: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return bool(self.counts["lost"] or self.counts["duplicated"])

    def cell(self) -> str:
        text = " / ".join(str(self.counts[name]) for name in COUNTS)
        notes = [f"{n} {reason}" for reason, n in sorted(self.marked.items())]
        if self.counts["number not read"]:
            notes.append(f"{self.counts['number not read']} number not read")
        return text + (f" ({'; '.join(notes)})" if notes else "")


Push = Callable[[str, str], Awaitable[Any]]
Texts = Callable[[str], Awaitable[list[str]]]


async def file_complaint(
    intake: Intake,
    push: Push,
    texts: Texts,
    start: asyncio.Event,
    stopping: asyncio.Event,
    think: Callable[[], float],
) -> None:
    """The patient files their complaint once their window starts, answering each question after
    the bot asked it; `push` sends as WeChat does and returns the SentPush (msg_id, acked)."""
    stop = asyncio.create_task(stopping.wait())
    begin = asyncio.create_task(start.wait())
    await asyncio.wait({stop, begin}, return_when=asyncio.FIRST_COMPLETED)
    for waiting in (stop, begin):
        waiting.cancel()
    seen = len(await texts(intake.openid))
    words: str | None = START
    while words is not None and not stopping.is_set() and len(intake.pushes) < MOST_PUSHES:
        sent = await push(intake.openid, words)
        intake.pushes.append((sent.msg_id, words, sent.acked))
        intake.started = intake.started or (words == START and sent.acked)
        intake.confirmed = intake.confirmed or (words == CONFIRM and sent.acked)
        received = await _next_message(intake.openid, texts, seen, stopping)
        if received is None:
            return
        words = next_words(received, intake.confirmed)
        if words == START and intake.started:
            # Not one of the intake's questions: the rest of the answer may still be on its way
            # (held back while WeChat is away). Start again only if nothing more comes.
            more = await _next_message(intake.openid, texts, len(received), stopping, RESTART_AFTER)
            received = more or received
            words = next_words(received, intake.confirmed)
        seen = len(received)
        await asyncio.sleep(think())


async def _next_message(
    openid: str, texts: Texts, seen: int, stopping: asyncio.Event, patience: float | None = None
) -> list[str] | None:
    """What the patient has read once the bot wrote again (None: the load ended first, or nothing
    came within `patience` seconds). Under a fault the answer may take a while; the patient waits
    for it, as people do."""
    loop = asyncio.get_running_loop()
    deadline = None if patience is None else loop.time() + patience
    while not stopping.is_set() and (deadline is None or loop.time() < deadline):
        received = await texts(openid)
        if len(received) > seen:
            # The bot's answer may come as several messages: read them all before answering.
            await asyncio.sleep(0.5)
            return await texts(openid)
        await asyncio.sleep(0.2)
    return None


def check_complaints(
    intakes: list[Intake],
    cases: list[dict[str, Any]],
    sent_texts: dict[str, list[str]],
    given_up: Callable[[str, int], bool],
    held_by_staff: Callable[[str, int], bool],
) -> dict[str, ComplaintTally]:
    """Each intake's tally in its window. `cases`: the complaint rows of these patients (openid,
    case_number); `sent_texts`: what WeChat delivered to each patient; `given_up(openid, msg_id)`
    and `held_by_staff(openid, msg_id)`: accepted reasons for a confirmation left unregistered."""
    tallies: dict[str, ComplaintTally] = {}
    by_patient: dict[str, list[str]] = {}
    for case in cases:
        by_patient.setdefault(case["openid"], []).append(case["case_number"])
    for intake in intakes:
        tally = tallies.setdefault(intake.window, ComplaintTally())
        counts = tally.counts
        numbers = by_patient.get(intake.openid, [])
        read = {n for text in sent_texts.get(intake.openid, []) for n in _CASE_NUMBER.findall(text)}
        counts["started"] += intake.started
        counts["confirmed"] += intake.confirmed
        if len(numbers) > 1:
            counts["duplicated"] += len(numbers) - 1
            tally.problems.append(f"{intake.openid}: one confirmed intake, {len(numbers)} cases {numbers}")
        if read - set(numbers):
            counts["lost"] += 1
            tally.problems.append(f"{intake.openid}: read case numbers {sorted(read)}, registered {numbers}")
        if not intake.confirmed:
            if numbers:
                counts["duplicated"] += len(numbers)
                tally.problems.append(f"{intake.openid}: never confirmed, yet registered {numbers}")
            elif intake.started:
                tally.marked["not confirmed by the end"] += 1
            continue
        if len(numbers) == 1:
            counts["registered once"] += 1
            counts["number not read"] += not read
            continue
        if numbers:
            continue  # counted as duplicated above
        confirmations = [msg_id for msg_id, text, acked in intake.pushes if text == CONFIRM and acked]
        if any(given_up(intake.openid, msg_id) for msg_id in confirmations):
            tally.marked["confirmation given up, escalated"] += 1
        elif any(held_by_staff(intake.openid, msg_id) for msg_id in confirmations):
            tally.marked["confirmation held by staff"] += 1
        else:
            counts["lost"] += 1
            said = [text for _, text, _ in intake.pushes]
            last_read = sent_texts.get(intake.openid, [])[-3:]
            tally.problems.append(
                f"{intake.openid}: confirmed (pushes {confirmations}), no case registered; "
                f"the patient said {said}, read last {last_read}"
            )
    return tallies
