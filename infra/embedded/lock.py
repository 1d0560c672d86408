"""An exclusive lock on a data directory, so only one Taskyard process owns it."""

import fcntl
import os
from pathlib import Path
from types import TracebackType

from infra.embedded.errors import EmbeddedError

LOCK_NAME = "taskyard.lock"


def ensure_directory(path: Path) -> None:
    """Create `path` and its parents, or explain in one line why that is impossible."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise EmbeddedError(f"cannot create data directory {path}: {exc.strerror}") from None


class DataDirLock:
    """Held while a process runs the embedded services of a data directory.

    The lock is an `flock` on a file that is never truncated before it is held, so a
    refused contender leaves the owner's lock and its PID untouched.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.path = directory / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock at once or raise `EmbeddedError` naming the owner."""
        ensure_directory(self.directory)
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise EmbeddedError(f"cannot open lock file {self.path}: {exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise EmbeddedError(
                f"data directory {self.directory} is in use by another taskyard process "
                f"(pid {owner}); stop it or set TASKYARD_DATA_DIR to another directory"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        """Give the lock up."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "DataDirLock":
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
