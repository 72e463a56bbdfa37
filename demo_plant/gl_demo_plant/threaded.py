"""Run an asyncio demo server in a daemon thread, so tests and scripts can use it synchronously."""

from __future__ import annotations

import asyncio
import threading
from typing import Generic, Protocol, TypeVar


class AsyncServer(Protocol):
    async def start(self) -> None: ...
    async def stop(self) -> None: ...


ServerT = TypeVar("ServerT", bound=AsyncServer)


class ThreadedServer(Generic[ServerT]):
    """`with ThreadedServer(server) as running:` starts `server` on its own event loop and stops it after."""

    def __init__(self, server: ServerT, name: str) -> None:
        self.server = server
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=name, daemon=True)

    def __enter__(self) -> ServerT:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start(), self._loop).result(timeout=60)
        return self.server

    def __exit__(self, *exc) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(), self._loop).result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
