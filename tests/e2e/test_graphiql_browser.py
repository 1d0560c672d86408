"""GraphiQL renders and runs a query in headless Chromium that can reach nothing but loopback."""

import asyncio
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from itertools import count
from pathlib import Path
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
WAIT = 30.0


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

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Send one command and return its result, skipping the events that arrive meanwhile."""
        message_id = next(self.ids)
        await self.socket.send(json.dumps({"id": message_id, "method": method, "params": params}))
        while True:
            reply = json.loads(await self.socket.recv())
            if reply.get("id") == message_id:
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
RESULT = "document.querySelector('.graphiql-response .CodeMirror')"


async def test_graphiql_runs_a_query(graphiql_url: str, devtools_page: str) -> None:
    async with websockets.connect(devtools_page, max_size=None) as socket:
        page = DevTools(socket)
        await page.call("Page.navigate", url=graphiql_url)
        await page.wait_for(f"{EDITOR} !== null")
        await page.evaluate(f"{EDITOR}.CodeMirror.setValue({json.dumps(QUERY)})")
        await page.evaluate("document.querySelector('.graphiql-execute-button').click()")
        text = await page.wait_for(f"{RESULT} && {RESULT}.CodeMirror.getValue()")
    assert json.loads(text)["data"] == {"health": {"status": "OK"}}
