"""A lean closed-loop HTTP/1.1 load generator: N keep-alive connections, one request each in flight.

It speaks just enough HTTP to count complete responses, so that the client costs far less
than the servers it measures.
"""

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Target:
    """One endpoint and the exact request bytes sent to it."""

    name: str
    port: int
    request: bytes


def build_request(method: str, path: str, body: bytes = b"") -> bytes:
    """A keep-alive HTTP/1.1 request for loopback, with a JSON body when one is given."""
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Accept: application/json"]
    if body:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


@dataclass(slots=True)
class Failures:
    """The answers that were not 200: how many per status line, and the first one whole."""

    statuses: Counter[str] = field(default_factory=Counter)
    first: bytes = b""

    def add(self, response: bytes) -> None:
        """Count one answer that was not 200."""
        self.statuses[response.split(b"\r\n", 1)[0].decode(errors="replace")] += 1
        self.first = self.first or response

    def __bool__(self) -> bool:
        return bool(self.statuses)

    def __str__(self) -> str:
        counts = ", ".join(f"{count} x {status!r}" for status, count in self.statuses.items())
        return f"{counts}; the first was:\n{self.first.decode(errors='replace')}"


class _Connection(asyncio.Protocol):
    """Sends the request again as soon as the previous response is complete."""

    def __init__(self, request: bytes, counter: list[int], failures: Failures) -> None:
        self.request = request
        self.counter = counter
        self.failures = failures
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) != -1:
            head = bytes(self.buffer[: end + 2]).lower()
            start = head.find(b"content-length:")
            length = int(head[start + 15 : head.find(b"\r\n", start)]) if start != -1 else 0
            if len(self.buffer) < end + 4 + length:
                return
            if not head.startswith(b"http/1.1 200"):
                self.failures.add(bytes(self.buffer[: end + 4 + length]))
            del self.buffer[: end + 4 + length]
            self.counter[0] += 1
            assert self.transport is not None
            self.transport.write(self.request)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)


async def measure(target: Target, *, connections: int, seconds: float) -> tuple[float, Failures]:
    """Requests per second that `target` sustains, and the answers that were not 200."""
    loop = asyncio.get_running_loop()
    counter, failures = [0], Failures()
    opened = [
        await loop.create_connection(
            lambda: _Connection(target.request, counter, failures), "127.0.0.1", target.port
        )
        for _ in range(connections)
    ]
    started, before = time.perf_counter(), counter[0]
    await asyncio.sleep(seconds)
    done, elapsed = counter[0] - before, time.perf_counter() - started
    for transport, protocol in opened:
        transport.close()
        await protocol.closed
    return done / elapsed, failures
