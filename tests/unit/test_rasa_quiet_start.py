"""Rasa's processes start without the deprecation warnings of its pinned libraries (bot/launch.py)."""

from __future__ import annotations

from tests.support.stack import RASA_PY, Process, base_env, free_port, wait_until


def test_the_action_server_starts_without_deprecation_noise() -> None:
    server = Process("actions-quiet", [str(RASA_PY), "bot/launch.py", "actions"], base_env())
    server.env["ACTION_SERVER_PORT"] = str(free_port())
    server.log_path.unlink(missing_ok=True)
    server.start()
    try:
        wait_until(lambda: "Action endpoint is up" in server.tail(), 60, "the action server")
    finally:
        server.stop()
    log = server.log_path.read_text()
    assert "Registered function for 'action_ask_patient_relationship'" in log
    assert "Warning" not in log, log
