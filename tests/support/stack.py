"""Start the real processes (Rasa, action server, web app, worker, fake WeChat API) for end-to-end tests."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from channels.sandbox.pushes import Push, build_push
from crm_backend.config import SANDBOX_AES_KEY, SANDBOX_APPID, SANDBOX_TOKEN

ROOT = Path(__file__).resolve().parents[2]
ADMIN_USERNAME = "admin"
ADMIN_PASSWORD = "admin-pass-123"
LOG_DIR = ROOT / "var" / "test-logs"
APP_PY = ROOT / ".venv" / "bin" / "python"
RASA_PY = ROOT / ".venv-rasa" / "bin" / "python"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate: Callable[[], bool], timeout: float, what: str, interval: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except (httpx.HTTPError, OSError):
            pass
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")


class Process:
    """A child process with its output in var/test-logs/<name>.log."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], cwd: Path = ROOT) -> None:
        self.name = name
        self.argv = argv
        self.env = env
        self.cwd = cwd
        self.popen: subprocess.Popen[bytes] | None = None
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        self.log_path = LOG_DIR / f"{name}.log"

    def start(self) -> Process:
        log = self.log_path.open("ab")
        self.popen = subprocess.Popen(
            self.argv,
            env=self.env,
            cwd=self.cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    @property
    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def stop(self, timeout: float = 15) -> None:
        if not self.running:
            return
        assert self.popen is not None
        os.killpg(self.popen.pid, signal.SIGTERM)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        """SIGKILL the whole process group: no clean-up, exactly like a crash."""
        if self.popen is not None and self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(10)

    def tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def web_argv(port: int) -> list[str]:
    """The web process as the Procfile starts it (crm_backend/web.py), on 127.0.0.1:`port`."""
    return [str(APP_PY), "-m", "crm_backend.web", "--host", "127.0.0.1", "--port", str(port)]


def base_env(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WECHAT_", "DATABASE_", "REDIS_"))}
    env.update(
        {
            "PYTHONUNBUFFERED": "1",
            "LOG_LEVEL": "INFO",
            "TF_CPP_MIN_LOG_LEVEL": "2",
        }
    )
    env.update(overrides)
    return env


@dataclass
class RasaServers:
    rasa_port: int
    action_port: int
    rasa: Process
    actions: Process

    def stop(self) -> None:
        self.rasa.stop()
        self.actions.stop()

    def restart_actions(self) -> None:
        """Start the action server again (after a test killed it) and wait until it answers."""
        self.actions.start()
        health = f"http://127.0.0.1:{self.action_port}/health"
        wait_until(lambda: httpx.get(health, timeout=2).status_code == 200, 60, "the action server again")


def start_rasa(redis_url: str, crm_url: str | None = None, *, label: str = "") -> RasaServers:
    """`crm_url`: the web app whose bot API the action server calls (booking needs it); `label`
    tells the logs of a second pair apart (var/test-logs/rasa<label>.log)."""
    rasa_port, action_port = free_port(), free_port()
    env = base_env(RASA_PORT=str(rasa_port), ACTION_SERVER_PORT=str(action_port), REDIS_URL=redis_url)
    if crm_url is not None:
        env["CRM_API_URL"] = crm_url
    actions = Process(f"actions{label}", [str(RASA_PY), "bot/launch.py", "actions"], env).start()
    rasa = Process(f"rasa{label}", [str(RASA_PY), "bot/launch.py", "server"], env).start()
    servers = RasaServers(rasa_port, action_port, rasa, actions)
    try:
        wait_until(
            lambda: bool(
                httpx.get(f"http://127.0.0.1:{rasa_port}/status", timeout=2).json().get("model_file")
            ),
            timeout=300,
            what="the Rasa server to load its model",
            interval=1,
        )
        wait_until(
            lambda: httpx.get(f"http://127.0.0.1:{action_port}/health", timeout=2).status_code == 200,
            timeout=120,
            what="the action server",
            interval=1,
        )
    except TimeoutError:
        servers.stop()
        raise TimeoutError(f"Rasa did not start:\n{rasa.tail()}\n{actions.tail()}") from None
    return servers


@dataclass
class FakeWeChat:
    """Our client for the sandbox's control endpoints."""

    port: int
    process: Process

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def sent(self, touser: str | None = None) -> list[dict[str, Any]]:
        params = {"touser": touser} if touser else {}
        data = httpx.get(f"{self.base}/sandbox/sent", params=params, timeout=5).json()
        return data["sent"] if isinstance(data, dict) else data

    def texts(self, touser: str) -> list[str]:
        return [item.get("content") or "" for item in self.sent(touser)]

    def wait_sent(self, touser: str, after: int, wait: float) -> list[dict[str, Any]]:
        """Sends to `touser` after seq `after`, held by the sandbox until one arrives or `wait` ends."""
        params = {"touser": touser, "after": after, "wait": wait}
        return httpx.get(f"{self.base}/sandbox/sent", params=params, timeout=wait + 5).json()

    def fault(self, **spec: Any) -> None:
        httpx.post(f"{self.base}/sandbox/faults", json=spec, timeout=5).raise_for_status()

    def clear_faults(self) -> None:
        httpx.delete(f"{self.base}/sandbox/faults", timeout=5).raise_for_status()

    def expire_tokens(self) -> None:
        httpx.post(f"{self.base}/sandbox/expire-tokens", timeout=5).raise_for_status()

    def stats(self) -> dict[str, int]:
        return httpx.get(f"{self.base}/sandbox/stats", timeout=5).json()


def start_fake_wechat(*, niceness: int = 0, port: int | None = None) -> FakeWeChat:
    """`niceness` lets a benchmark keep the stand-in for WeChat's servers (which run elsewhere in
    production) from taking CPU away from the processes it measures; `port` one chosen before."""
    port = port or free_port()
    argv = [str(APP_PY), "-m", "channels.sandbox", "--port", str(port)]
    if niceness:
        argv = ["nice", "-n", str(niceness), *argv]
    proc = Process("fake-wechat", argv, base_env()).start()
    fake = FakeWeChat(port, proc)
    wait_until(
        lambda: httpx.get(f"{fake.base}/sandbox/stats", timeout=2).status_code == 200, 30, "fake WeChat"
    )
    return fake


@dataclass
class Stack:
    """Web app + worker on one database, wired to shared Rasa servers and the fake WeChat API."""

    name: str
    database_url: str
    redis_url: str
    rasa: RasaServers
    wechat: FakeWeChat
    port: int = field(default_factory=free_port)
    extra_env: dict[str, str] = field(default_factory=dict)
    web: Process | None = None
    worker: Process | None = None
    #: Further workers on the same queues (start_extra_worker), stopped with the stack.
    extra_workers: list[Process] = field(default_factory=list)

    def env(self, **overrides: str) -> dict[str, str]:
        settings = {
            "PORT": str(self.port),
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis_url,
            "WECHAT_API_BASE": self.wechat.base,
            "RASA_PORT": str(self.rasa.rasa_port),
            "ACTION_SERVER_PORT": str(self.rasa.action_port),
            # Short timings so crash-recovery tests finish in seconds.
            "SWEEPER_GRACE_SECONDS": "2",
            "SWEEPER_INTERVAL_SECONDS": "1",
            "STREAM_RECLAIM_IDLE_MS": "3000",
            "DELIVERY_BACKOFF_SECONDS": "0.1",
            # The console's first admin, and people on duty whatever time the suite runs.
            "ADMIN_USERNAME": ADMIN_USERNAME,
            "ADMIN_PASSWORD": ADMIN_PASSWORD,
            "STAFFED_HOURS": "00:00-23:59:59",
            "CONSOLE_GONE_AFTER_SECONDS": "4",
        }
        return base_env(**{**settings, **self.extra_env, **overrides})

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def migrate(self) -> None:
        subprocess.run(
            [str(ROOT / ".venv" / "bin" / "alembic"), "-c", "crm_backend/alembic.ini", "upgrade", "head"],
            cwd=ROOT,
            env=self.env(),
            check=True,
            capture_output=True,
        )

    def start_web(self) -> None:
        self.web = Process(f"web-{self.name}", web_argv(self.port), self.env()).start()
        wait_until(
            lambda: httpx.get(f"{self.url}/healthz", timeout=5).status_code in (200, 503), 60, "web app"
        )

    def start_worker(self, **overrides: str) -> None:
        """`overrides`: settings of this worker only (a Rasa port nothing listens on, say)."""
        self.worker = self._worker_process(f"worker-{self.name}", overrides).start()

    def start_extra_worker(self, **overrides: str) -> Process:
        """Another worker process beside `worker`, sharing its queues."""
        name = f"worker-{self.name}-{len(self.extra_workers) + 2}"
        process = self._worker_process(name, overrides).start()
        self.extra_workers.append(process)
        return process

    def _worker_process(self, name: str, overrides: dict[str, str]) -> Process:
        # As in the Procfile: background work yields the CPU to the webhook, which WeChat waits on.
        argv = ["nice", "-n", "10", str(APP_PY), "-m", "crm_backend.worker.main"]
        return Process(name, argv, self.env(**overrides))

    def wait_healthy(self, timeout: float = 60) -> None:
        wait_until(
            lambda: httpx.get(f"{self.url}/healthz", timeout=5).status_code == 200, timeout, "healthz 200"
        )

    def stop(self) -> None:
        for proc in (*self.extra_workers, self.worker, self.web):
            if proc is not None:
                proc.stop()

    # -- acting as WeChat ----------------------------------------------------------------------

    def build(self, kind: str, openid: str, **kwargs: Any) -> Push:
        return build_push(
            kind,  # type: ignore[arg-type]
            openid,
            token=SANDBOX_TOKEN,
            appid=SANDBOX_APPID,
            aes_key=SANDBOX_AES_KEY,
            **kwargs,
        )

    async def post(self, push: Push, client: httpx.AsyncClient | None = None) -> httpx.Response:
        async with _client(client) as http:
            return await http.post(
                f"{self.url}/wechat/oa", params=push.params, content=push.body, headers=push.headers
            )

    async def say(self, openid: str, text: str, *, mode: str = "plain") -> httpx.Response:
        response = await self.post(self.build("text", openid, content=text, mode=mode))
        assert response.status_code == 200 and response.text == "success", response.text
        return response

    async def wait_answers(self, openid: str, count: int, timeout: float = 30) -> list[str]:
        """Wait until the fake WeChat API has received `count` messages for this patient."""
        deadline = time.monotonic() + timeout
        while True:
            sent = await asyncio.to_thread(self.wechat.sent, openid)
            texts = [item.get("content") or "" for item in sent]
            if len(texts) >= count:
                return texts
            left = deadline - time.monotonic()
            if left <= 0:
                worker_log = self.worker.tail() if self.worker else ""
                raise AssertionError(f"expected {count} answers for {openid}, got {texts}\n{worker_log}")
            last = sent[-1]["seq"] if sent else 0
            await asyncio.to_thread(self.wechat.wait_sent, openid, last, min(left, 5.0))

    async def converse(self, openid: str, text: str, timeout: float = 30) -> list[str]:
        """Send one text and return the answers it produced (waits for at least one)."""
        from tests.support.settle import wait_turn_settled

        before = len(await asyncio.to_thread(self.wechat.texts, openid))
        push = self.build("text", openid, content=text)
        response = await self.post(push)
        assert response.status_code == 200 and response.text == "success", response.text
        await self.wait_answers(openid, before + 1, timeout)
        # A turn may produce several messages: all of them are out once it has settled.
        assert push.msg_id is not None
        await wait_turn_settled(self, openid, push.msg_id, timeout=timeout)
        return (await asyncio.to_thread(self.wechat.texts, openid))[before:]

    async def consented_patient(self) -> str:
        """A new patient who followed the account and agreed to health-data processing."""
        openid = new_openid()
        response = await self.post(self.build("subscribe", openid))
        assert response.text == "success"
        await self.wait_answers(openid, 2)
        await self.converse(openid, "同意")
        return openid


class _client:
    def __init__(self, client: httpx.AsyncClient | None) -> None:
        self.given = client
        self.own: httpx.AsyncClient | None = None

    async def __aenter__(self) -> httpx.AsyncClient:
        if self.given is not None:
            return self.given
        self.own = httpx.AsyncClient(timeout=10)
        return self.own

    async def __aexit__(self, *exc: object) -> None:
        if self.own is not None:
            await self.own.aclose()


def new_openid() -> str:
    """Shaped like a real openid (28 characters), unique per test."""
    return "o" + uuid.uuid4().hex[:27]
