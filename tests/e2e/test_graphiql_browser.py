"""GraphiQL renders, runs a query and follows a run live in headless Chromium, offline."""

import asyncio
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from itertools import count
from pathlib import Path
from string import Template
from typing import Any

import httpx
import pytest
import websockets

from tests.e2e.conftest import RunningServer

pytestmark = pytest.mark.e2e

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "chrome")
# Names resolve to nothing and every connection that is not loopback goes to a dead proxy.
OFFLINE = [
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    "--proxy-server=http://127.0.0.1:9",
]
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    *OFFLINE,
]
QUERY = "{ health { status } }"
# What the README has a new user type into GraphiQL, with steps of 1 s instead of 100 ms:
# a browser on a loaded CI machine may take seconds to subscribe, and the test must
# see the run while it is still going.
START_RUN = (
    'mutation { startRun(input: {task: "demo.count", params: {to: 20, delayMs: 1000}}) '
    "{ run { id status } userErrors { code message path } } }"
)
RUN_EVENTS = Template(
    'subscription { runEvents(runId: "$run_id") { seq __typename '
    "... on RunProgressEvent { fraction } ... on RunLogEvent { message } "
    "... on RunResultEvent { status } } }"
)
WAIT = 30.0
# The count's 20 steps take 100 ms each; followed live, its progress arrives over about 2 s.
# A replay of a finished run would deliver it all within a few milliseconds.
LIVE_SPREAD_SECONDS = 1.0


@pytest.fixture(scope="module")
def chromium() -> str:
    """Path of a Chromium binary; without one the tests skip, except in CI, where they fail."""
    found = next((path for name in BROWSERS if (path := shutil.which(name))), None)
    if found is None:
        missing = "no Chromium binary on PATH (install Debian's `chromium` to run this test)"
        if os.environ.get("CI", "").lower() in ("true", "1"):
            pytest.fail(f"{missing}; CI must run the browser tests")
        pytest.skip(missing)
    return found


@pytest.fixture(scope="module")
def graphiql_url(running_server: RunningServer) -> str:
    """GraphiQL's URL on the real server, once it is sure to serve the built page."""
    page = httpx.get(running_server.graphql_url, headers={"accept": "text/html"}, timeout=5)
    if "build_graphiql.py" in page.text:
        pytest.fail(
            "GraphiQL's assets were not built: run `python scripts/build_graphiql.py` first"
        )
    return running_server.graphql_url


def test_graphiql_renders_with_no_network(chromium: str, graphiql_url: str, tmp_path: Path) -> None:
    command = [
        chromium,
        *CHROMIUM_FLAGS,
        f"--user-data-dir={tmp_path}",
        "--virtual-time-budget=10000",
        "--dump-dom",
        graphiql_url,
    ]
    dom = subprocess.run(command, capture_output=True, text=True, timeout=60, check=True).stdout
    assert "graphiql-container" in dom
    assert "graphiql-execute-button" in dom
    assert "Loading GraphiQL" not in dom


class DevTools:
    """A minimal Chrome DevTools Protocol client for one page."""

    def __init__(self, socket: websockets.ClientConnection) -> None:
        self.socket = socket
        self.ids = count(1)
        self.events: list[dict[str, Any]] = []

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Send one command and return its result, keeping the events that arrive meanwhile."""
        message_id = next(self.ids)
        await self.socket.send(json.dumps({"id": message_id, "method": method, "params": params}))
        while True:
            reply = json.loads(await self.socket.recv())
            if reply.get("id") != message_id:
                self.events.append(reply)
                continue
            assert "error" not in reply, reply["error"]
            result: dict[str, Any] = reply["result"]
            return result

    async def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page."""
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result["result"].get("value")

    async def wait_for(self, expression: str) -> Any:
        """Poll an expression until it is truthy, for at most WAIT seconds."""
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            if value := await self.evaluate(expression):
                return value
            await asyncio.sleep(0.2)
        pytest.fail(f"timed out waiting for: {expression}")


@pytest.fixture
def devtools_page(chromium: str, tmp_path: Path) -> Iterator[str]:
    """A headless Chromium with remote debugging on; yields its first page's DevTools URL."""
    command = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path}"]
    browser = subprocess.Popen(
        [*command, "--remote-debugging-port=0", "about:blank"], stderr=subprocess.DEVNULL
    )
    try:
        port_file = tmp_path / "DevToolsActivePort"
        deadline = time.monotonic() + WAIT
        while not port_file.is_file() and time.monotonic() < deadline:
            time.sleep(0.1)
        port = port_file.read_text().split()[0]
        targets = httpx.get(f"http://127.0.0.1:{port}/json/list", timeout=5).json()
        yield next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")
    finally:
        browser.terminate()
        browser.wait(timeout=10)


EDITOR = "document.querySelector('.graphiql-query-editor .CodeMirror')"
# The headers editor shares the editor tools pane with the variables editor, which it hides.
HEADERS_EDITOR = (
    "document.querySelector('.graphiql-editor-tool .graphiql-editor:not(.hidden) .CodeMirror')"
)
RESULT = "document.querySelector('.graphiql-response .CodeMirror')"
RESULT_TEXT = f"{RESULT} && {RESULT}.CodeMirror.getValue()"


async def _open(page: DevTools, url: str) -> None:
    await page.call("Page.navigate", url=url)
    await page.wait_for(f"{EDITOR} !== null")


async def _execute(page: DevTools, query: str) -> None:
    """Type `query` into GraphiQL's editor and press its run button."""
    await page.evaluate(f"{EDITOR}.CodeMirror.setValue({json.dumps(query)})")
    # GraphiQL parses the editor's text a moment after each change, and the run button uses the
    # last parse to choose HTTP or WebSocket: pressed at once, it would send the old operation's.
    await page.wait_for(f"{EDITOR}.CodeMirror.documentAST?.loc.source.body === {json.dumps(query)}")
    await page.evaluate("document.querySelector('.graphiql-execute-button').click()")


async def test_graphiql_runs_a_query(graphiql_url: str, devtools_page: str) -> None:
    async with websockets.connect(devtools_page, max_size=None) as socket:
        page = DevTools(socket)
        await _open(page, graphiql_url)
        await _execute(page, QUERY)
        text = await page.wait_for(RESULT_TEXT)
    assert json.loads(text)["data"] == {"health": {"status": "OK"}}


async def _set_headers(page: DevTools, headers: dict[str, str]) -> None:
    """Open GraphiQL's Headers tab and type `headers` into it."""
    await page.evaluate("document.querySelector('button[data-name=\"headers\"]').click()")
    await page.wait_for(f"{HEADERS_EDITOR} !== null")
    await page.evaluate(f"{HEADERS_EDITOR}.CodeMirror.setValue({json.dumps(json.dumps(headers))})")


async def _result_once(page: DevTools, contains: str) -> Any:
    """The response pane's JSON, once it holds `contains`."""
    text = await page.wait_for(f"{RESULT_TEXT}.includes({json.dumps(contains)}) && {RESULT_TEXT}")
    return json.loads(text)


async def _run_status(server: RunningServer, run_id: str) -> str:
    query = "query($id: ID!) { run(id: $id) { status } }"
    body = {"query": query, "variables": {"id": run_id}}
    headers = {"Authorization": f"Bearer {server.token}"}
    async with httpx.AsyncClient(timeout=10) as http:
        reply = await http.post(server.graphql_url, json=body, headers=headers)
    status: str = reply.json()["data"]["run"]["status"]
    return status


async def _watch_until_result(page: DevTools, server: RunningServer, run_id: str) -> list[str]:
    """Follow the response pane until it shows the result; the run's status at each progress."""
    statuses: list[str] = []
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        shown = json.loads(await page.evaluate(RESULT_TEXT) or "{}").get("data") or {}
        kind = (shown.get("runEvents") or {}).get("__typename")
        if kind == "RunResultEvent":
            return statuses
        if kind == "RunProgressEvent":
            statuses.append(await _run_status(server, run_id))
        await asyncio.sleep(0.05)
    pytest.fail("the response pane never showed the run's result")


def _frames_received(page: DevTools) -> list[tuple[float, dict[str, Any]]]:
    """Each `runEvents` event the page's WebSocket received, with the time it arrived."""
    frames = (
        (event["params"]["timestamp"], json.loads(event["params"]["response"]["payloadData"]))
        for event in page.events
        if event.get("method") == "Network.webSocketFrameReceived"
    )
    return [
        (at, frame["payload"]["data"]["runEvents"])
        for at, frame in frames
        if frame["type"] == "next"
    ]


async def _all_frames(page: DevTools) -> list[tuple[float, dict[str, Any]]]:
    """The received events up to the run's result, which DevTools may report after the pane."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        frames = _frames_received(page)
        if frames and frames[-1][1]["__typename"] == "RunResultEvent":
            return frames
        await page.evaluate("0")
        await asyncio.sleep(0.05)
    pytest.fail("DevTools never reported the WebSocket frame with the run's result")


async def test_graphiql_follows_a_run_live(
    graphiql_url: str, devtools_page: str, running_server: RunningServer
) -> None:
    async with websockets.connect(devtools_page, max_size=None) as socket:
        page = DevTools(socket)
        await page.call("Network.enable")
        await _open(page, graphiql_url)
        await _set_headers(page, {"Authorization": f"Bearer {running_server.token}"})
        await _execute(page, START_RUN)
        started = (await _result_once(page, "startRun"))["data"]["startRun"]
        assert started["userErrors"] == []
        run_id = started["run"]["id"]
        await _execute(page, RUN_EVENTS.substitute(run_id=run_id))
        statuses = await _watch_until_result(page, running_server, run_id)
        frames = await _all_frames(page)
        shown = await _result_once(page, "RunResultEvent")
    # The pane showed progress while the run was still going, and the socket got it over time.
    assert "RUNNING" in statuses
    progress_at = [at for at, event in frames if event["__typename"] == "RunProgressEvent"]
    assert progress_at[-1] - progress_at[0] >= LIVE_SPREAD_SECONDS
    events = [event for _, event in frames]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert [e["fraction"] for e in events if "fraction" in e] == [n / 20 for n in range(1, 21)]
    assert [e["message"] for e in events if "message" in e] == [
        f"counted {n} of 20" for n in range(1, 21)
    ]
    final = {"seq": len(events), "__typename": "RunResultEvent", "status": "SUCCEEDED"}
    assert events[-1] == final
    assert shown["data"] == {"runEvents": final}
