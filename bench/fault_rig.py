"""The parts of the fault-injection suite that stand between the stack and what it depends on.

A Redis server the suite owns (so it can lose its data or restart it), and a TCP relay that plays
both the load balancer in front of the web processes and a network path to PostgreSQL the suite
can cut, so the machine's shared servers are never touched.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
import time

import redis

from tests.support.postgres import POSTGRES_ADMIN_DSN
from tests.support.stack import Process, free_port, wait_until


class OwnRedis:
    """A redis-server that keeps nothing on disk, like the machine's, but ours to flush and restart."""

    def __init__(self) -> None:
        self.port = free_port()
        argv = ["redis-server", "--port", str(self.port), "--save", "", "--appendonly", "no"]
        self.process = Process("faults-redis", argv, {"PATH": "/usr/bin:/bin:/usr/local/bin"})

    def url(self, db: int) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> None:
        self.process.start()
        wait_until(lambda: self.client().ping(), 10, "the suite's Redis")

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=2)

    def lose_data(self) -> None:
        """What a failover to a replica without persistence looks like to its clients."""
        self.client().flushall()

    def stop(self) -> None:
        self.process.kill()

    def locks_held(self, pattern: str) -> int:
        return sum(1 for _ in self.client().scan_iter(match=pattern, count=1000))


class Relay:
    """A TCP relay on its own thread and event loop: connections to `port` are passed to the first
    upstream that accepts (turn by turn), and `cut(seconds)` drops every connection and refuses
    new ones for that long, as a broken network path or a crashed server would."""

    def __init__(self, name: str, upstreams: list[tuple[str, int]]) -> None:
        self.name = name
        self.upstreams = upstreams
        self.port = free_port()
        self._turn = itertools.cycle(range(len(upstreams)))
        self._cut_until = 0.0
        self._open: set[asyncio.StreamWriter] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"relay-{name}", daemon=True)
        self._server: asyncio.Server | None = None

    def start(self) -> Relay:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._listen(), self._loop)
        future.result(10)
        return self

    def cut(self, seconds: float) -> None:
        self._cut_until = time.monotonic() + seconds
        self._loop.call_soon_threadsafe(self._drop_all)

    def stop(self) -> None:
        async def close() -> None:
            if self._server is not None:
                self._server.close()
            self._drop_all()
            others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in others:
                task.cancel()
            await asyncio.gather(*others, return_exceptions=True)

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(close(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def _drop_all(self) -> None:
        for writer in list(self._open):
            writer.transport.abort()
        self._open.clear()

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port, backlog=512)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if time.monotonic() < self._cut_until:
            writer.transport.abort()
            return
        upstream = await self._connect()
        if upstream is None:
            writer.transport.abort()
            return
        up_reader, up_writer = upstream
        self._open.update((writer, up_writer))
        try:
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        finally:
            for end in (writer, up_writer):
                self._open.discard(end)
                end.transport.abort()

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        first = next(self._turn)
        for offset in range(len(self.upstreams)):
            host, port = self.upstreams[(first + offset) % len(self.upstreams)]
            try:
                return await asyncio.wait_for(asyncio.open_connection(host, port), 3)
            except (OSError, TimeoutError):
                continue
        return None

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.write_eof()


def postgres_address() -> tuple[str, int]:
    netloc = POSTGRES_ADMIN_DSN.split("://", 1)[1].split("/", 1)[0].rsplit("@", 1)[-1]
    host, _, port = netloc.partition(":")
    return host or "127.0.0.1", int(port or 5432)
