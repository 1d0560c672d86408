"""The reference GraphQL-over-HTTP audits (npm `graphql-http`) against the real server."""

import json
from pathlib import Path

import pytest

from tests.e2e.conftest import RunningServer
from tests.live import node_and_npm, npm_installed, run_node_tool

pytestmark = pytest.mark.e2e
AUDIT_DIR = Path(__file__).parent / "audit"
AUDIT_FILES = ("package.json", "package-lock.json", "audit.mjs")
# graphql-http 1.23 has 61 server audits; far fewer means the run broke off.
MIN_AUDITS = 50


def test_every_audit_is_ok(running_server: RunningServer, request: pytest.FixtureRequest) -> None:
    node, _ = node_and_npm()
    cache = request.config.cache.mkdir("graphql-http-audit")
    workdir = npm_installed(AUDIT_DIR, AUDIT_FILES, "graphql-http", cache)
    output = run_node_tool([node, "audit.mjs", running_server.graphql_url], workdir, timeout=120)
    results = [json.loads(line) for line in output.splitlines()]
    assert len(results) >= MIN_AUDITS
    assert [r for r in results if r["status"] != "ok"] == []
