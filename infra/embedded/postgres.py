"""Embedded PostgreSQL: the server binaries shipped in the `pgserver` wheel."""

import importlib.util
import os
import pwd
import signal
import socket
import stat
import subprocess
from pathlib import Path

from infra.embedded.errors import EmbeddedError
from infra.embedded.processes import ChildProcess, credentials
from infra.embedded.server import HOST, EmbeddedServer

# PostgreSQL refuses to run as root; as root we run it as the account pgserver itself uses.
SERVICE_ACCOUNT = "pgserver"
INITDB_TIMEOUT = 120.0


def binary(name: str) -> Path:
    """A PostgreSQL program from the pgserver wheel.

    The package is located, not imported: importing it sets up runtime directories
    and locks of its own that Taskyard does not use.
    """
    spec = importlib.util.find_spec("pgserver")
    if spec is None or spec.origin is None:
        raise EmbeddedError("embedded PostgreSQL needs the pgserver package; install it")
    return Path(spec.origin).parent / "pginstall" / "bin" / name


def _run_as() -> str | None:
    return SERVICE_ACCOUNT if os.geteuid() == 0 else None


def _ensure_account(name: str) -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        pass
    command = ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise EmbeddedError(f"cannot create the {name} account: {result.stderr.strip()}")
    return pwd.getpwnam(name)


def _allow_traversal(path: Path) -> None:
    """Let other accounts pass through every parent of `path` (not list or read them)."""
    for parent in path.parents:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            parent.chmod(mode | stat.S_IXOTH)


class EmbeddedPostgres(EmbeddedServer):
    """PostgreSQL 16 with its cluster in `<data_dir>/postgres`, on 127.0.0.1 only."""

    name = "PostgreSQL"
    slug = "postgres"

    @property
    def url(self) -> str:
        """The superuser's URL to the default database."""
        return f"postgresql://postgres@{HOST}:{self.port}/postgres"

    def _postmaster(self) -> list[str]:
        try:
            return (self.directory / "postmaster.pid").read_text().splitlines()
        except OSError:
            return []

    def _is_ready(self) -> bool:
        lines = self._postmaster()
        return len(lines) >= 8 and lines[0] == str(self.pid) and lines[7].strip() == "ready"

    def is_serving(self) -> bool:
        """The cluster's postmaster is alive, ready and listens on our port."""
        lines = self._postmaster()
        if len(lines) < 8 or lines[3] != str(self.port) or lines[7].strip() != "ready":
            return False
        try:
            os.kill(int(lines[0]), 0)
            with socket.create_connection((HOST, self.port), timeout=1):
                return True
        except (OSError, ValueError):
            return False

    def _prepare(self) -> None:
        super()._prepare()
        user = _run_as()
        if user is not None:
            account = _ensure_account(user)
            _allow_traversal(self.directory)
            # The account runs PostgreSQL's programs from the wheel, wherever it is installed
            # (a virtualenv inside a private checkout, say), so it must reach them too.
            _allow_traversal(binary("initdb"))
            os.chown(self.directory, account.pw_uid, account.pw_gid)
        if not (self.directory / "PG_VERSION").exists():
            self._initdb(user)

    def _initdb(self, user: str | None) -> None:
        command = [
            str(binary("initdb")),
            f"--pgdata={self.directory}",
            "--username=postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--no-locale",
        ]
        try:
            result = subprocess.run(
                command,
                capture_output=True,
                text=True,
                timeout=INITDB_TIMEOUT,
                **credentials(user),
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise EmbeddedError(f"initdb failed for {self.directory}: {exc}") from None
        if result.returncode != 0:
            reason = (result.stderr.strip().splitlines() or ["no output"])[-1]
            raise EmbeddedError(f"initdb failed for {self.directory}: {reason}")

    def _process_for_run(self) -> ChildProcess:
        # -k '' turns Unix sockets off: only TCP on loopback, and no socket path limits.
        argv = [str(binary("postgres")), "-D", str(self.directory)]
        argv += ["-h", HOST, "-p", str(self.port), "-k", ""]
        return ChildProcess(
            "postgres",
            argv,
            output=self.log_path,
            user=_run_as(),
            # SIGINT is PostgreSQL's fast shutdown: clients are cut off, data is flushed.
            stop_signal=signal.SIGINT,
        )
