"""Two Rasa servers behind one worker: a turn goes to either, and one whose action server is away
is passed over without the patient losing a message or their place in a booking."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from tests.support.settle import send_marker_and_wait
from tests.support.stack import RasaServers, Stack, start_rasa


@pytest.fixture
def second_rasa(stack: Stack) -> Iterator[RasaServers]:
    servers = start_rasa(stack.rasa.rasa.env["REDIS_URL"], stack.url)
    assert stack.worker is not None
    stack.worker.stop()
    stack.start_worker(
        RASA_URLS=f"http://127.0.0.1:{stack.rasa.rasa_port},http://127.0.0.1:{servers.rasa_port}",
        ACTION_SERVER_URLS=f"http://127.0.0.1:{stack.rasa.action_port},http://127.0.0.1:{servers.action_port}",
    )
    try:
        yield servers
    finally:
        stack.worker.stop()
        stack.start_worker()
        servers.stop()


# About Rasa, not the database: once is enough.
@pytest.mark.parametrize("stack", ["postgresql"], indirect=True)
async def test_a_booking_goes_on_through_the_other_rasa_while_one_action_server_is_away(
    stack: Stack, second_rasa: RasaServers
) -> None:
    openids = [await stack.consented_patient() for _ in range(3)]
    for openid in openids:
        assert await stack.converse(openid, "我想挂号")  # the form asks for consent to register
    actions = stack.rasa.actions
    actions.kill()
    try:
        # Whichever server takes each turn, the open booking form carries on where it was.
        for openid in openids:
            answers = await stack.converse(openid, "算了不约了", timeout=60)
            assert any("没有您的同意" in text for text in answers), answers
        for openid in openids:
            assert await stack.converse(openid, "我想挂号", timeout=60)
            answers = await stack.converse(openid, "1", timeout=60)
            assert any("是您的什么人" in text for text in answers), answers
    finally:
        await asyncio.to_thread(stack.rasa.restart_actions)
    for openid in openids:
        marked = await send_marker_and_wait(stack, openid, timeout=60)
        assert marked.answers
