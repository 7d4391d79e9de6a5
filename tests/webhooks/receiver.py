"""A real HTTP receiver on 127.0.0.1 for the webhook tests, built on ``asyncio.start_server``.

Each path (``/hook/<name>``) is one endpoint with its own secret; every request is recorded with
whether its signature verified. ``respond`` decides the status from the event id and how many
times that event reached that endpoint, which is what the retry tests script.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from services.catalog.webhooks import verify_signature

Respond = Callable[[str, int], int]
"""(event id, 1-based count of requests for it at this endpoint) -> HTTP status."""


def always(status: int) -> Respond:
    return lambda _event_id, _nth: status


def fail_first(failures: int, *, status: int = 500) -> Respond:
    return lambda _event_id, nth: status if nth <= failures else 200


@dataclass
class Hit:
    path: str
    status: int
    verified: bool
    headers: dict[str, str]
    body: bytes

    @property
    def event_id(self) -> str:
        return self.headers.get("x-offshoot-event-id", "")

    @property
    def payload(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed


@dataclass
class Receiver:
    respond: Respond = field(default_factory=lambda: always(200))
    error_body: bytes = b"receiver says no"
    secrets: dict[str, str] = field(default_factory=dict)
    hits: list[Hit] = field(default_factory=list)
    base: str = ""
    _server: asyncio.Server | None = None
    _counts: Counter[tuple[str, str]] = field(default_factory=Counter)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.base = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    def url(self, name: str = "main") -> str:
        return f"{self.base}/hook/{name}"

    def at(self, name: str = "main") -> list[Hit]:
        return [h for h in self.hits if h.path == f"/hook/{name}"]

    def successes(self, name: str = "main") -> Counter[str]:
        """Event id -> how many 2xx this endpoint answered for it."""
        return Counter(h.event_id for h in self.at(name) if 200 <= h.status < 300)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request_line = await reader.readline()
            if not request_line:
                return
            path = request_line.decode().split()[1]
            headers: dict[str, str] = {}
            while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
                name, _, value = line.decode().partition(":")
                headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            verified = verify_signature(
                self.secrets.get(path.rsplit("/", 1)[-1], ""),
                headers.get("x-offshoot-timestamp", ""),
                body,
                headers.get("x-offshoot-signature", ""),
            )
            event_id = headers.get("x-offshoot-event-id", "")
            self._counts[(path, event_id)] += 1
            status = self.respond(event_id, self._counts[(path, event_id)])
            self.hits.append(Hit(path, status, verified, headers, body))
            reply = b"ok" if status < 300 else self.error_body
            writer.write(
                f"HTTP/1.1 {status} X\r\nContent-Length: {len(reply)}\r\n"
                "Content-Type: text/plain\r\nConnection: close\r\n\r\n".encode()
                + reply
            )
            await writer.drain()
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
