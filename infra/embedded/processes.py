"""Child processes that live in their own process group and die with their parent."""

import contextlib
import ctypes
import os
import pwd
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Protocol, TypedDict

PR_SET_PDEATHSIG = 1
POLL_INTERVAL = 0.05
_libc = ctypes.CDLL(None, use_errno=True)


class Credentials(TypedDict):
    """Whom a child runs as: keyword arguments for `subprocess.Popen`."""

    user: str | None
    group: int | None
    extra_groups: list[int] | None


def credentials(user: str | None) -> Credentials:
    """Run as `user` with its own primary group and no other, or (None) as ourselves."""
    if user is None:
        return Credentials(user=None, group=None, extra_groups=None)
    # Changing only the user would keep our groups: as root, group 0 is a privilege the
    # account must not have, and its group bits deny it a 0701 directory owned by root.
    return Credentials(user=user, group=pwd.getpwnam(user).pw_gid, extra_groups=[])


def _die_with(parent: int, death_signal: int) -> Callable[[], None]:
    def arrange() -> None:
        _libc.prctl(PR_SET_PDEATHSIG, death_signal)
        # The parent may have died before prctl ran; then no signal would ever come.
        if os.getppid() != parent:
            os.kill(os.getpid(), death_signal)

    return arrange


class ChildProcess:
    """One restartable child in its own process group, signalled when this process dies.

    Its own group keeps a terminal's Ctrl-C away from it, so the parent decides the
    order of shutdown, and lets the parent kill any process it left behind. The death
    signal is tied to the thread that starts it: start children from a long-lived thread.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        output: Path | None = None,
        user: str | None = None,
        stop_signal: int = signal.SIGTERM,
    ) -> None:
        self.name = name
        self._argv = list(argv)
        self._env = env
        self._output = output
        self._user = user
        self._stop_signal = stop_signal
        self._popen: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        """The process ID of the current run, if one was started."""
        return self._popen.pid if self._popen else None

    def start(self) -> None:
        """Start a new run; its output goes to `output` when given, else to ours."""
        with contextlib.ExitStack() as stack:
            log = stack.enter_context(self._output.open("ab")) if self._output else None
            self._popen = subprocess.Popen(
                self._argv,
                env=self._env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT if log else None,
                process_group=0,
                preexec_fn=_die_with(os.getpid(), self._stop_signal),
                **credentials(self._user),
            )

    def exit_code(self) -> int | None:
        """The exit status once the run has ended (anything left in its group is killed)."""
        if self._popen is None or self._popen.returncode is not None:
            return self._popen.returncode if self._popen else None
        # Look without reaping: while the leader is a zombie its group ID cannot be reused.
        if os.waitid(os.P_PID, self._popen.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None:
            return None
        self._kill_group()
        return self._popen.wait()

    def request_stop(self) -> None:
        """Ask the run to stop with its stop signal."""
        if self.exit_code() is None and self._popen is not None:
            self._popen.send_signal(self._stop_signal)

    def finish(self, deadline: float) -> None:
        """Wait for the run to end until `deadline` (monotonic), then kill its whole group."""
        if self._popen is None:
            return
        while self.exit_code() is None and time.monotonic() < deadline:
            time.sleep(POLL_INTERVAL)
        self._kill_group()
        self._popen.wait()

    def stop(self, grace: float) -> None:
        """Stop the run, killing it after `grace` seconds."""
        stop_all([self], grace)

    def _kill_group(self) -> None:
        if self._popen is not None and self._popen.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._popen.pid, signal.SIGKILL)


class Stoppable(Protocol):
    """Anything that stops in two steps, so many can be stopped at once."""

    def request_stop(self) -> None:
        """Ask it to stop."""

    def finish(self, deadline: float) -> None:
        """Wait until `deadline` (monotonic), then kill what is left."""


def stop_all(children: Sequence[Stoppable], grace: float) -> None:
    """Ask every child to stop at once, then kill what is still running after `grace` s."""
    for child in children:
        child.request_stop()
    deadline = time.monotonic() + grace
    for child in children:
        child.finish(deadline)
