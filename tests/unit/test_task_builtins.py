"""The built-in tasks, run with a recording reporter; http.request against a real server."""

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.runs.models import LogLevel
from tests.live import free_port
from tests.unit.test_task_context import RecordingReporter, make_claim
from workers.tasks.catalog import load_catalog
from workers.tasks.demo import DemoFailure
from workers.tasks.errors import InvalidParams, RunCancelled, is_retriable
from workers.tasks.http import MAX_BODY_BYTES, RequestFailed, ServerError
from workers.tasks.spec import TaskSpec

CATALOG = load_catalog()


def spec(name: str) -> TaskSpec[Any]:
    found = CATALOG.get(name)
    assert found is not None
    return found


async def execute(name: str, params: dict[str, Any], reporter: RecordingReporter) -> Any:
    claim = make_claim(name, params)
    return await spec(name).execute(claim, reporter)


# -- demo.count and demo.fail -----------------------------------------------------------


@settings(max_examples=25)
@given(to=st.integers(1, 40))
async def test_count_reports_each_step_and_returns_the_count(to: int) -> None:
    reporter = RecordingReporter()
    result = await execute("demo.count", {"to": to, "delayMs": 0}, reporter)
    assert result == {"count": to}
    assert reporter.progress_calls == [(i / to, f"{i}/{to}") for i in range(1, to + 1)]
    assert len(reporter.lines) == to
    assert all(level is LogLevel.INFO for level, _ in reporter.lines)


async def test_a_cancelled_count_logs_its_cleanup_and_stops() -> None:
    reporter = RecordingReporter()
    running = asyncio.create_task(execute("demo.count", {"to": 1000, "delayMs": 20}, reporter))
    await asyncio.wait_for(reporter.progressed.wait(), 5)
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    level, line = reporter.lines[-1]
    assert level is LogLevel.WARNING
    assert line == "stopped after 1 of 1000; cleaned up"


async def test_a_count_stops_on_a_cancel_request_without_being_cancelled() -> None:
    reporter = RecordingReporter(cancel=True)
    with pytest.raises(RunCancelled):
        await execute("demo.count", {"to": 1000, "delayMs": 1}, reporter)
    assert reporter.progress_calls == []
    assert reporter.lines[-1][1] == "stopped after 0 of 1000; cleaned up"


async def test_fail_fails_with_the_message_after_the_delay() -> None:
    started = time.monotonic()
    with pytest.raises(DemoFailure, match=r"^boom$") as caught:
        await execute("demo.fail", {"message": "boom", "delayMs": 100}, RecordingReporter())
    assert time.monotonic() - started >= 0.1
    assert is_retriable(caught.value)


async def test_fail_has_a_default_message() -> None:
    with pytest.raises(DemoFailure, match=r"^failed on purpose$"):
        await execute("demo.fail", {}, RecordingReporter())


# -- http.request against a local server -----------------------------------------------


@dataclass
class Script:
    """What the server answers, per path, and what it received."""

    failures_left: int = 1
    received: list[dict[str, Any]] = field(default_factory=list)


def handler_for(script: Script) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _answer(self, status: int, body: bytes, content_type: str = "text/plain") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("X-Seen", "1")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length).decode()
            seen = {"method": self.command, "path": self.path, "body": body}
            script.received.append(seen | {"headers": dict(self.headers)})
            if self.path == "/flaky" and script.failures_left > 0:
                script.failures_left -= 1
                self._answer(503, b"try later")
            elif self.path == "/missing":
                self._answer(404, b"no such thing")
            elif self.path == "/big":
                self._answer(200, b"x" * (MAX_BODY_BYTES + 10_000))
            elif self.path == "/slow":
                time.sleep(1.0)
                self._answer(200, b"late")
            else:
                self._answer(200, json.dumps({"ok": True}).encode(), "application/json")

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle

    return Handler


class QuietServer(ThreadingHTTPServer):
    """Some tests hang up early on purpose; the broken pipe that follows is expected."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[tuple[str, Script]]:
    script = Script()
    httpd = QuietServer(("127.0.0.1", 0), handler_for(script))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", script
    httpd.shutdown()
    httpd.server_close()


async def test_a_5xx_is_retriable_and_the_next_attempt_gets_the_result(
    server: tuple[str, Script],
) -> None:
    base, script = server
    claim = make_claim("http.request", {"url": f"{base}/flaky"})
    with pytest.raises(ServerError, match="answered 503") as caught:
        await spec("http.request").execute(claim, RecordingReporter())
    assert is_retriable(caught.value)
    retried = make_claim("http.request", {"url": f"{base}/flaky"}, attempt=2)
    retried.run.id = claim.run.id
    result = await spec("http.request").execute(retried, RecordingReporter())
    assert result["status"] == 200
    assert json.loads(result["body"]) == {"ok": True}
    # Both attempts carried the same key, so the server can tell a retry from a new request.
    keys = [r["headers"]["Idempotency-Key"] for r in script.received]
    assert keys == [str(claim.run.id)] * 2


async def test_a_4xx_is_a_result_not_a_failure(server: tuple[str, Script]) -> None:
    base, _ = server
    result = await execute("http.request", {"url": f"{base}/missing"}, RecordingReporter())
    assert result["status"] == 404
    assert result["body"] == "no such thing"
    assert result["truncated"] is False
    assert result["headers"]["x-seen"] == "1"


async def test_method_headers_and_body_are_sent(server: tuple[str, Script]) -> None:
    base, script = server
    params = {
        "url": f"{base}/things",
        "method": "POST",
        "headers": {"X-Trace": "abc", "Idempotency-Key": "caller-key"},
        "body": "payload",
    }
    result = await execute("http.request", params, RecordingReporter())
    assert result["status"] == 200
    sent = script.received[-1]
    assert (sent["method"], sent["path"], sent["body"]) == ("POST", "/things", "payload")
    assert sent["headers"]["X-Trace"] == "abc"
    # A key the caller chose wins over the run's.
    assert sent["headers"]["Idempotency-Key"] == "caller-key"


async def test_a_head_request_has_an_empty_body(server: tuple[str, Script]) -> None:
    base, _ = server
    result = await execute("http.request", {"url": base, "method": "HEAD"}, RecordingReporter())
    assert (result["status"], result["body"]) == (200, "")


async def test_a_large_body_is_cut_at_64_kib_and_flagged(server: tuple[str, Script]) -> None:
    base, _ = server
    result = await execute("http.request", {"url": f"{base}/big"}, RecordingReporter())
    assert len(result["body"]) == MAX_BODY_BYTES == 64 * 1024
    assert result["truncated"] is True


async def test_no_connection_is_retriable() -> None:
    url = f"http://127.0.0.1:{free_port()}/"
    with pytest.raises(RequestFailed, match="ConnectError") as caught:
        await execute("http.request", {"url": url}, RecordingReporter())
    assert is_retriable(caught.value)


async def test_a_slow_server_times_out_as_a_retriable_failure(server: tuple[str, Script]) -> None:
    base, _ = server
    params = {"url": f"{base}/slow", "timeoutSeconds": 0.2}
    # Read or, on a loaded machine, connect: either way a timeout is worth retrying.
    with pytest.raises(RequestFailed, match=r"(Read|Connect)Timeout"):
        await execute("http.request", params, RecordingReporter())


@pytest.mark.parametrize(
    "params",
    [
        {"url": "ftp://example.com/file"},
        {"url": "file:///etc/passwd"},
        {"url": "http://"},
        {"url": "http://example.com", "method": "TRACE"},
        {"url": "http://example.com", "timeoutSeconds": 0},
        {"url": "http://example.com", "timeoutSeconds": 121},
    ],
)
async def test_requests_outside_the_model_fail_for_good(params: dict[str, Any]) -> None:
    with pytest.raises(InvalidParams) as caught:
        await execute("http.request", params, RecordingReporter())
    assert not is_retriable(caught.value)
