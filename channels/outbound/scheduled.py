"""The outbox's periodic job: renew WeChat's access token before it expires, not on a send."""

from __future__ import annotations

from channels.outbound.delivery import Outbox
from crm_backend.runtime import Runtime
from crm_backend.scheduling import Job

#: Seconds between checks; the token is renewed once it has less than TOKEN_REFRESH_MARGIN_SECONDS left.
TOKEN_CHECK_EVERY_SECONDS = 60.0


async def _refresh_token(runtime: Runtime) -> None:
    await Outbox(runtime).tokens.refresh_if_expiring(runtime.settings.token_refresh_margin_seconds)


JOBS = [Job("token-refresher", _refresh_token, lambda settings: TOKEN_CHECK_EVERY_SECONDS, at_start=True)]
