"""What every embedded server shares: a port on loopback, a data directory, a log file."""

import errno
import socket
import time
from abc import ABC, abstractmethod
from pathlib import Path

from infra.embedded.errors import EmbeddedError
from infra.embedded.lock import ensure_directory
from infra.embedded.processes import POLL_INTERVAL, ChildProcess

HOST = "127.0.0.1"
START_TIMEOUT = 30.0
STOP_GRACE = 3.0


def port_problem(host: str, port: int) -> str | None:
    """Why nothing could listen on host:port right now, or None when it could."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            return "the port is already in use" if exc.errno == errno.EADDRINUSE else exc.strerror
    return None


def last_line(path: Path) -> str:
    """The last non-blank line of a log file, to explain a failure in one line."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return "no log written"
    return next((line.strip() for line in reversed(lines) if line.strip()), "empty log")


class EmbeddedServer(ABC):
    """A real server process that keeps its data in one directory and listens on loopback."""

    name: str
    slug: str

    def __init__(self, data_dir: Path, port: int) -> None:
        self.data_dir = data_dir
        self.directory = data_dir / self.slug
        self.log_path = data_dir / "logs" / f"{self.slug}.log"
        self.port = port
        self._process: ChildProcess | None = None

    @property
    @abstractmethod
    def url(self) -> str:
        """How clients reach this server."""

    @property
    def pid(self) -> int | None:
        """The server's process ID while this object runs it."""
        return self._process.pid if self._process else None

    @abstractmethod
    def is_serving(self) -> bool:
        """Whether this data directory's server already answers on our port."""

    @abstractmethod
    def _process_for_run(self) -> ChildProcess:
        """The child process that runs the server."""

    @abstractmethod
    def _is_ready(self) -> bool:
        """Whether the server started by us accepts clients."""

    def _prepare(self) -> None:
        """Create what the server needs before its first start."""
        ensure_directory(self.directory)
        ensure_directory(self.log_path.parent)

    def start(self) -> None:
        """Start the server and wait until it accepts clients, or raise `EmbeddedError`."""
        problem = port_problem(HOST, self.port)
        if problem:
            where = f"{HOST}:{self.port}"
            raise EmbeddedError(f"cannot start embedded {self.name} on {where}: {problem}")
        try:
            self._prepare()
            self._process = self._process_for_run()
            self._process.start()
        except OSError as exc:
            raise EmbeddedError(f"cannot start embedded {self.name}: {exc}") from None
        deadline = time.monotonic() + START_TIMEOUT
        while not self._is_ready():
            if self._process.exit_code() is not None or time.monotonic() > deadline:
                self._process.stop(STOP_GRACE)
                raise EmbeddedError(
                    f"embedded {self.name} failed to start: {last_line(self.log_path)} "
                    f"(log: {self.log_path})"
                )
            time.sleep(POLL_INTERVAL)

    def exit_code(self) -> int | None:
        """The exit status once the server has died, else None."""
        return self._process.exit_code() if self._process else None

    def request_stop(self) -> None:
        """Ask the server to shut down cleanly."""
        if self._process:
            self._process.request_stop()

    def finish(self, deadline: float) -> None:
        """Wait for the server to end until `deadline` (monotonic), then kill it."""
        if self._process:
            self._process.finish(deadline)

    def stop(self) -> None:
        """Shut the server down, killing it if it takes too long."""
        if self._process:
            self._process.stop(STOP_GRACE)
