"""Run any ASGI app (Starlette) under uvicorn in a daemon thread on a loopback port.

Tests and bench scripts use it synchronously: `with HttpServerThread(app) as server: server.url`.
The socket is bound before the thread starts, so the port is known and free of races.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import uvicorn


class HttpServerThread:
    """`with HttpServerThread(app, port=0) as server:` serves `app` until the block ends."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0, name: str = "http-server") -> None:
        self.app = app
        self.host = host
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((host, port))
        self.port: int = self._socket.getsockname()[1]
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=2)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        """Base URL without a trailing slash, e.g. http://127.0.0.1:43121."""
        return f"http://{self.host}:{self.port}"

    def _run(self) -> None:
        try:
            self._server.run(sockets=[self._socket])
        except BaseException as exc:  # surfaced by start(); a thread cannot raise into the caller
            self._error = exc

    def start(self, timeout_s: float = 30.0) -> HttpServerThread:
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if self._error is not None or not self._thread.is_alive():
                raise RuntimeError(f"HTTP server on {self.url} failed to start: {self._error!r}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"HTTP server on {self.url} not ready after {timeout_s} s")
            time.sleep(0.01)
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout=timeout_s)
        self._socket.close()

    def __enter__(self) -> HttpServerThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
