"""Where the time of one bot turn goes: each step of the answer path timed on its own.

Starts Rasa, the action server and the fake WeChat API, then drives the same code the web app and
worker run in one process, turn after turn: accept (what the webhook does), then process (read the
pending push, ask Rasa while recording the patient's message, store the answers, deliver them);
and times bare Rasa REST for the same text right before each turn. Our own cost of a turn is
accept + (process - bare Rasa); `deliver` is shown on its own too.

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
    from channels.outbound.delivery import Outbox
    from channels.wechat_oa.push import WeChatPush, parse_xml
    from crm_backend.config import Settings
    from crm_backend.conversations.answers import Answered
    from crm_backend.conversations.inbound import InboundWriter, accept_push
    from crm_backend.conversations.processing import InboundProcessor
    from crm_backend.runtime import Runtime

    settings = Settings()
    runtime = Runtime.create(settings)
    processor, outbox, writer = InboundProcessor(runtime), Outbox(runtime), InboundWriter(runtime)
    writer.start()
    await runtime.inbound.ensure_group()
    openid = new_openid()
    timings: dict[str, list[float]] = {k: [] for k in ("accept", "process", "deliver", "bare_rasa")}

    async def timed(name: str, step):  # type: ignore[no-untyped-def]
        started = time.perf_counter()
        result = await step
        timings[name].append(time.perf_counter() - started)
        return result

    async def deliver(answered: Answered) -> None:
        await timed("deliver", outbox.deliver_answered(answered))

    try:
        for turn, text in enumerate(["同意"] + ["你好", "谢谢"] * (args.turns // 2)):
            # Bare Rasa first: Rasa answers a sender that has just been answered a little faster.
            bare = {"sender": f"bare-{openid}", "message": text}
            await timed(
                "bare_rasa", runtime.http.post(f"{settings.rasa_urls[0]}/webhooks/rest/webhook", json=bare)
            )
            push = WeChatPush.from_fields(parse_xml(stack.build("text", openid, content=text).body))
            await timed("accept", accept_push(runtime, writer, settings.oa_appid, push))
            await timed("process", processor.process_patient(settings.oa_appid, openid, deliver))
            if turn == 0:  # the consent answer is not a bot turn
                for values in timings.values():
                    values.clear()
        medians = {name: round(statistics.median(values) * 1000, 2) for name, values in timings.items()}
        ours = medians["accept"] + medians["process"] - medians["bare_rasa"]
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
