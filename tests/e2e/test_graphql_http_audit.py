"""The reference GraphQL-over-HTTP audits (npm `graphql-http`) against the real server."""

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from tests.e2e.conftest import RunningServer
from tests.live import node_tool, run_node_tool

pytestmark = pytest.mark.e2e
AUDIT_DIR = Path(__file__).parent / "audit"
AUDIT_FILES = ("package.json", "package-lock.json", "audit.mjs")
# graphql-http 1.23 has 61 server audits; far fewer means the run broke off.
MIN_AUDITS = 50
# tests/e2e/test_runs_e2e.py still imports the Node.js helpers from here, by these names.
_tool, _run = node_tool, run_node_tool


def _installed(cache: Path, npm: str) -> Path:
    """The audit package installed with `npm ci`, reused while the lockfile is unchanged."""
    lock = (AUDIT_DIR / "package-lock.json").read_bytes()
    target = cache / hashlib.sha256(lock).hexdigest()[:16]
    target.mkdir(parents=True, exist_ok=True)
    for name in AUDIT_FILES:
        shutil.copyfile(AUDIT_DIR / name, target / name)
    if not (target / "node_modules" / "graphql-http").is_dir():
        command = [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund"]
        run_node_tool(command, target, timeout=300)
    return target


def test_every_audit_is_ok(running_server: RunningServer, request: pytest.FixtureRequest) -> None:
    node, npm = node_tool("node"), node_tool("npm")
    if node is None or npm is None:
        pytest.skip("no node or npm on PATH, and the `build` extra is not installed")
    workdir = _installed(request.config.cache.mkdir("graphql-http-audit"), npm)
    output = run_node_tool([node, "audit.mjs", running_server.graphql_url], workdir, timeout=120)
    results = [json.loads(line) for line in output.splitlines()]
    assert len(results) >= MIN_AUDITS
    assert [r for r in results if r["status"] != "ok"] == []
