"""Where the time of one bot turn goes: each step of the answer path timed on its own.

Starts Rasa, the action server and the fake WeChat API, then drives the same code the web app and
worker run (accept, record, ask Rasa, store answers, deliver) in one process, turn after turn, and
times bare Rasa REST for the same text right after each turn.

    .venv/bin/python bench/answer_path_breakdown.py [--db postgresql|sqlite] [--turns 30]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.webhook_latency import fresh_sqlite_file
from tests.conftest import _fresh_postgres, _fresh_redis
from tests.support.stack import Stack, new_openid, start_fake_wechat, start_rasa


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="postgresql")
    parser.add_argument("--turns", type=int, default=30)
    args = parser.parse_args()

    rasa = start_rasa(_fresh_redis("rasa"))
    wechat = start_fake_wechat()
    url = await _fresh_postgres() if args.db == "postgresql" else f"sqlite+aiosqlite:///{fresh_sqlite_file()}"
    stack = Stack(f"breakdown-{args.db}", url, _fresh_redis(args.db), rasa, wechat)
    stack.migrate()
    os.environ.update(stack.env())

    # Imported after the environment is set: settings are read once.
    from sqlalchemy import select

    from channels.outbound.delivery import Outbox
    from channels.wechat_oa.push import WeChatPush, parse_xml
    from crm_backend.config import Settings
    from crm_backend.conversations.inbound import InboundWriter, accept_push
    from crm_backend.conversations.models import InboundMessage, SenderType
    from crm_backend.conversations.processing import InboundProcessor
    from crm_backend.runtime import Runtime

    settings = Settings()
    runtime = Runtime.create(settings)
    processor, outbox, writer = InboundProcessor(runtime), Outbox(runtime), InboundWriter(runtime)
    writer.start()
    await runtime.inbound.ensure_group()
    openid = new_openid()
    timings: dict[str, list[float]] = {
        k: [] for k in ("accept", "record", "ask_rasa", "store", "deliver", "bare_rasa")
    }

    async def timed(name: str, step):  # type: ignore[no-untyped-def]
        started = time.perf_counter()
        result = await step
        timings[name].append(time.perf_counter() - started)
        return result

    try:
        for turn, text in enumerate(["同意"] + ["你好", "谢谢"] * (args.turns // 2)):
            push = WeChatPush.from_fields(parse_xml(stack.build("text", openid, content=text).body))
            await timed("accept", accept_push(runtime, writer, settings.oa_appid, push))
            async with runtime.db.sessions() as session:
                inbound_id = await session.scalar(
                    select(InboundMessage.id).order_by(InboundMessage.id.desc())
                )
            plan = await timed("record", processor._record(inbound_id))
            replies = await timed("ask_rasa", processor._ask_bot(plan)) if plan.bot_text else []
            await timed(
                "store", processor._store_answers(inbound_id, plan.conversation_id, replies, SenderType.BOT)
            )
            await timed("deliver", outbox.deliver_conversation(plan.conversation_id))
            bare = {"sender": f"bare-{openid}", "message": text}
            await timed(
                "bare_rasa", runtime.http.post(f"{settings.rasa_url}/webhooks/rest/webhook", json=bare)
            )
            if turn == 0:  # the consent answer is not a bot turn
                for values in timings.values():
                    values.clear()
        medians = {name: round(statistics.median(values) * 1000, 2) for name, values in timings.items()}
        ours = sum(medians[k] for k in ("accept", "record", "store", "deliver"))
        print(
            json.dumps({"database": args.db, "median_ms": medians, "our_steps_ms": round(ours, 2)}, indent=2)
        )
    finally:
        await writer.stop()
        await runtime.close()
        wechat.process.stop()
        rasa.stop()


if __name__ == "__main__":
    asyncio.run(main())
