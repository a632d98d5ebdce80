"""The outbox's periodic job: renew WeChat's access token before it expires, not on a send."""

from __future__ import annotations

import asyncio
import logging
import time

from channels.outbound.delivery import Outbox
from channels.outbound.wechat_api import WeChatUnavailable, WeChatUncertain
from crm_backend.runtime import Runtime
from crm_backend.scheduling import Job

log = logging.getLogger(__name__)

#: Seconds between checks; the token is renewed once it has less than TOKEN_REFRESH_MARGIN_SECONDS left.
TOKEN_CHECK_EVERY_SECONDS = 60.0
#: How long the worker's first check waits for the WeChat API to answer. Without a real official
#: account the API is the sandbox inside the web process, which `make run` starts beside the worker.
START_WAIT_SECONDS = 30.0


async def _refresh_token(runtime: Runtime) -> None:
    await Outbox(runtime).tokens.refresh_if_expiring(runtime.settings.token_refresh_margin_seconds)


async def _first_token(runtime: Runtime) -> None:
    """The first check, tried again while the API cannot be reached yet (its server is starting):
    what the worker races at start is that server, not another refresher."""
    deadline = time.monotonic() + START_WAIT_SECONDS
    delay = 0.25
    while True:
        try:
            await _refresh_token(runtime)
            return
        except WeChatUncertain:
            raise  # reached and no answer: not a server that is still starting
        except WeChatUnavailable as exc:
            if time.monotonic() + delay > deadline:
                raise
            log.debug("WeChat API not reachable yet (%s); trying again", exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)


JOBS = [
    Job(
        "token-refresher",
        _refresh_token,
        lambda settings: TOKEN_CHECK_EVERY_SECONDS,
        at_start=True,
        first_run=_first_token,
    )
]
