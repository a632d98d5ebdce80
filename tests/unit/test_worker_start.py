"""The worker starts beside the web process that serves the WeChat sandbox (`make run`): its first
token check waits for that server instead of warning that the refresh failed."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.support.stack import APP_PY, ROOT, Process, base_env, free_port, start_fake_wechat, wait_until

REDIS_DB = 5


def test_the_first_token_check_waits_for_the_sandbox_to_listen(tmp_path: Path) -> None:
    redis_url = f"{os.environ.get('TEST_REDIS_BASE', 'redis://127.0.0.1:6379')}/{REDIS_DB}"
    subprocess.run(["redis-cli", "-u", redis_url, "flushdb"], check=True, capture_output=True)
    wechat_port = free_port()
    env = base_env(
        DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'carebridge.db'}",
        REDIS_URL=redis_url,
        WECHAT_API_BASE=f"http://127.0.0.1:{wechat_port}",
    )
    alembic = ROOT / ".venv" / "bin" / "alembic"
    subprocess.run(
        [str(alembic), "-c", "crm_backend/alembic.ini", "upgrade", "head"], cwd=ROOT, env=env, check=True
    )
    worker = Process("worker-start", [str(APP_PY), "-m", "crm_backend.worker.main"], env)
    worker.log_path.unlink(missing_ok=True)
    worker.start()
    fake = None
    try:
        wait_until(lambda: " started (" in worker.tail(), 30, "the worker to start consuming")
        fake = start_fake_wechat(port=wechat_port)  # the web process comes up a moment later
        wait_until(lambda: "access token refreshed" in worker.tail(), 30, "the first token")
        log = worker.log_path.read_text()
        assert "token-refresher at start failed" not in log
        assert " WARNING carebridge.worker" not in log
    finally:
        worker.stop()
        if fake is not None:
            fake.process.stop()
