"""Set up a checkout and run Taskyard or its tests, with nothing but Python 3.11+.

python3 scripts/run.py setup         create .venv and install what changed
python3 scripts/run.py dev [ARGS]    set up, then `taskyard dev ARGS`
python3 scripts/run.py test [ARGS]   set up, then `pytest ARGS`
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path
from typing import NoReturn

MINIMUM_PYTHON = (3, 11)
ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".venv"
PYTHON = VENV / "bin" / "python"
# The hash of the pyproject.toml last installed; a different hash means install again.
STAMP = VENV / ".taskyard-installed"
GRAPHIQL_BUILD = ROOT / "scripts" / "build_graphiql.py"
EXTRAS = ".[dev,build]"


class SetupError(Exception):
    """Setting up the checkout failed; the message is one line for the user."""


def check_python() -> None:
    """Refuse an interpreter older than the project supports."""
    if sys.version_info < MINIMUM_PYTHON:
        found = ".".join(map(str, sys.version_info[:3]))
        raise SetupError(f"Python 3.11 or newer is required, this is {found}")


def ensure_venv() -> None:
    """Create `.venv` unless it already has an interpreter."""
    if PYTHON.exists():
        return
    print(f"run.py: creating {VENV}", file=sys.stderr)
    try:
        venv.create(VENV, with_pip=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        raise SetupError(f"cannot create {VENV} ({exc}); is the venv module installed?") from None


def _pyproject_hash() -> str:
    return hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()


def ensure_installed() -> None:
    """Install the project and its extras when pyproject.toml changed since the last install."""
    wanted = _pyproject_hash()
    if STAMP.exists() and STAMP.read_text().strip() == wanted:
        return
    print(f"run.py: installing {EXTRAS} into {VENV}; the first time takes a while", file=sys.stderr)
    pip = [str(PYTHON), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    pip += ["--editable", EXTRAS]
    code = subprocess.call(pip, cwd=ROOT)
    if code != 0:
        raise SetupError(f"pip install failed with exit code {code}; see its output above")
    STAMP.write_text(wanted + "\n")


def build_graphiql() -> None:
    """Fetch GraphiQL's pinned assets; the build script skips work already done."""
    if not GRAPHIQL_BUILD.exists():
        return
    code = subprocess.call([str(PYTHON), str(GRAPHIQL_BUILD)], cwd=ROOT)
    if code != 0:
        raise SetupError(f"building GraphiQL's assets failed with exit code {code}")


def setup() -> None:
    """Bring the checkout to a runnable state."""
    check_python()
    ensure_venv()
    ensure_installed()
    build_graphiql()


def command_for(name: str, args: list[str]) -> list[str]:
    """The program a subcommand hands over to."""
    if name == "dev":
        return [str(VENV / "bin" / "taskyard"), "dev", *args]
    return [str(PYTHON), "-m", "pytest", *args]


def hand_over(program: list[str]) -> NoReturn:
    """Replace this process with `program`, so Ctrl-C and the exit code are its own."""
    sys.stdout.flush()
    os.execv(program[0], program)  # noqa: S606 - fixed programs inside our own venv


def main(argv: list[str]) -> int:
    """Set up, then replace this process with the chosen command."""
    if not argv or argv[0] not in ("setup", "dev", "test"):
        print(__doc__, file=sys.stderr)
        return 0 if argv[:1] in (["-h"], ["--help"]) else 2
    name, rest = argv[0], argv[1:]
    os.chdir(ROOT)
    try:
        setup()
    except SetupError as exc:
        print(f"run.py: {exc}", file=sys.stderr)
        return 1
    if name == "setup":
        return 0
    hand_over(command_for(name, rest))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
