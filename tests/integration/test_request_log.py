"""Every request gets an X-Request-ID and one structured log line."""

import io
import json
import logging
import re
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from infra.logging import configure_logging

RequestLog = Callable[[], list[dict[str, Any]]]


@pytest.fixture
def request_log() -> Iterator[RequestLog]:
    """Production JSON logs for one test; call it for the request lines written so far."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    configure_logging(level="INFO", text=False)
    [handler] = root.handlers
    assert isinstance(handler, logging.StreamHandler)
    # pytest swaps stderr between set-up and the test, so the lines are read from here.
    written = io.StringIO()
    handler.setStream(written)

    def lines() -> list[dict[str, Any]]:
        entries = [json.loads(line) for line in written.getvalue().splitlines()]
        return [e for e in entries if e["logger"] == "taskyard.http"]

    yield lines
    root.handlers[:] = handlers
    root.setLevel(level)


async def test_a_client_request_id_is_echoed(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz", headers={"X-Request-ID": "edge-7f3a.01"})
    assert response.headers["x-request-id"] == "edge-7f3a.01"


@pytest.mark.parametrize("sent", [None, "has spaces and \u00e9", "x" * 129])
async def test_a_missing_or_unsafe_request_id_is_replaced(
    client: httpx.AsyncClient, sent: str | None
) -> None:
    headers = [(b"x-request-id", sent.encode())] if sent is not None else []
    first = await client.get("/healthz", headers=headers)
    second = await client.get("/healthz", headers=headers)
    ids = [first.headers["x-request-id"], second.headers["x-request-id"]]
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids), ids
    assert ids[0] != ids[1]


async def test_each_request_is_logged_as_one_json_line(
    client: httpx.AsyncClient, request_log: RequestLog
) -> None:
    response = await client.post(
        "/graphql",
        json={"query": "query Probe { version }"},
        headers={"X-Request-ID": "req-log-1"},
    )
    assert response.status_code == 200
    [line] = request_log()
    assert line["request_id"] == "req-log-1"
    assert (line["method"], line["path"], line["status"]) == ("POST", "/graphql", 200)
    assert line["operation"] == "Probe"
    assert isinstance(line["duration_ms"], float)
    assert line["level"] == "info"


async def test_a_refused_request_is_logged_with_its_status(
    client: httpx.AsyncClient, request_log: RequestLog
) -> None:
    response = await client.post(
        "/graphql", content=b"query=1", headers={"Content-Type": "text/plain"}
    )
    [line] = request_log()
    assert response.status_code >= 400
    assert line["status"] == response.status_code
    assert line["request_id"] == response.headers["x-request-id"]
