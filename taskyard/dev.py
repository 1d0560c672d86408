"""`taskyard dev`: the whole platform in one terminal, supervised until Ctrl-C."""

import http.client
import logging
import os
import signal
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from types import FrameType
from typing import Protocol

from infra.db import migrations
from infra.embedded import DataDirLock, EmbeddedError, EmbeddedServices, ServiceUrls
from infra.embedded.processes import ChildProcess, stop_all
from infra.embedded.server import STOP_GRACE
from infra.logging import configure_logging
from infra.settings import Settings
from taskyard.accounts import ensure_bootstrap_admin
from taskyard.commands import check_port_free, preflight

logger = logging.getLogger("taskyard.dev")

# The API and the worker get this long to finish; with the servers' grace it stays
# under the 10 s a developer waits after Ctrl-C.
APP_GRACE = 5.0
TICK = 0.2
FIRST_BACKOFF = 1.0
MAX_BACKOFF = 8.0
CRASH_WINDOW = 60.0
CRASH_LIMIT = 5
APP_COMMANDS = {"api": "serve", "worker": "worker"}


class Supervised(Protocol):
    """A process the supervisor keeps running."""

    name: str

    def start(self) -> None:
        """Start a new run."""

    def exit_code(self) -> int | None:
        """The exit status once the current run has ended, else None."""


class StopRequest:
    """Set by SIGINT or SIGTERM; the supervisor looks at it between steps."""

    def __init__(self) -> None:
        self.signal: int | None = None
        self._previous: dict[int, Callable[[int, FrameType | None], object] | int | None] = {}

    @property
    def requested(self) -> bool:
        """Whether a stop signal arrived."""
        return self.signal is not None

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.signal = signum

    def install(self) -> None:
        """Catch SIGINT and SIGTERM from now on."""
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)

    def restore(self) -> None:
        """Put the previous handlers back."""
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


class RestartPolicy:
    """A growing delay between restarts, and a limit for a process that keeps dying."""

    def __init__(self) -> None:
        self._exits: deque[float] = deque()

    def delay_after_exit(self, now: float) -> float | None:
        """Record an exit; the seconds to wait before restarting, or None to give up."""
        self._exits.append(now)
        while now - self._exits[0] > CRASH_WINDOW:
            self._exits.popleft()
        if len(self._exits) >= CRASH_LIMIT:
            return None
        return min(FIRST_BACKOFF * 2.0 ** (len(self._exits) - 1), MAX_BACKOFF)


class Supervisor:
    """Restarts whatever dies until a stop is requested or something keeps crashing."""

    def __init__(self, units: Sequence[Supervised], stop: StopRequest) -> None:
        self._units = units
        self._stop = stop
        self._policies = [RestartPolicy() for _ in units]
        self._due: dict[int, float] = {}

    def run(self, on_tick: Callable[[], None]) -> int:
        """Watch every unit; 0 after a requested stop, 1 after a crash loop."""
        while not self._stop.requested:
            now = time.monotonic()
            for index, unit in enumerate(self._units):
                if not self._tend(index, unit, now):
                    return 1
            on_tick()
            time.sleep(TICK)
        return 0

    def _tend(self, index: int, unit: Supervised, now: float) -> bool:
        if index in self._due:
            if now >= self._due[index]:
                del self._due[index]
                self._restart(unit)
            return True
        code = unit.exit_code()
        if code is None:
            return True
        delay = self._policies[index].delay_after_exit(now)
        if delay is None:
            logger.error(
                "%s exited %d times within %.0fs (last status %s); giving up",
                unit.name,
                CRASH_LIMIT,
                CRASH_WINDOW,
                code,
            )
            return False
        logger.warning("%s exited with status %s; restarting in %.1fs", unit.name, code, delay)
        self._due[index] = now + delay
        return True

    def _restart(self, unit: Supervised) -> None:
        try:
            unit.start()
        except (EmbeddedError, OSError) as exc:
            # The failed run counts as an exit on the next tick, so back-off applies.
            logger.warning("%s failed to restart: %s", unit.name, exc)
        else:
            logger.info("%s restarted", unit.name)


class Announcer:
    """Prints where the API is, once it first answers /healthz."""

    def __init__(self, settings: Settings) -> None:
        wildcard = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}
        self._host = wildcard.get(settings.host, settings.host)
        self._port = settings.port
        self._graphiql = settings.graphiql_enabled
        self.done = False

    @property
    def url(self) -> str:
        """The GraphQL endpoint as a browser on this machine reaches it."""
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self._port}/graphql"

    def _healthy(self) -> bool:
        connection = http.client.HTTPConnection(self._host, self._port, timeout=1)
        try:
            connection.request("GET", "/healthz")
            return connection.getresponse().status == 200
        except (OSError, http.client.HTTPException):
            return False
        finally:
            connection.close()

    def __call__(self) -> None:
        """Check once, until the API has answered."""
        if self.done or not self._healthy():
            return
        self.done = True
        what = "GraphiQL" if self._graphiql else "GraphQL API"
        print(f"Taskyard is running. {what}: {self.url}  (Ctrl-C stops it)", flush=True)


def app_processes(urls: ServiceUrls) -> list[ChildProcess]:
    """The API and one worker, each a `taskyard` process pointed at `urls`."""
    env = {**os.environ, "TASKYARD_DATABASE_URL": urls.database_url}
    env["TASKYARD_REDIS_URL"] = urls.redis_url
    return [
        ChildProcess(name, [sys.executable, "-m", "taskyard", command], env=env)
        for name, command in APP_COMMANDS.items()
    ]


def run_dev(settings: Settings) -> int:
    """Run embedded services, migrations, the API and a worker until SIGINT or SIGTERM."""
    configure_logging(level=settings.log_level, text=settings.text_logs)
    stop = StopRequest()
    with ExitStack() as stack:
        stack.enter_context(DataDirLock(settings.data_path))
        check_port_free(settings.host, settings.port)
        stop.install()
        stack.callback(stop.restore)
        embedded = EmbeddedServices.for_settings(settings)
        servers = embedded.servers
        stack.callback(stop_all, servers, STOP_GRACE)
        for server in servers:
            logger.info("starting embedded %s on 127.0.0.1:%d", server.name, server.port)
            server.start()
        preflight(embedded.urls, settings)
        logger.info("migrating the database to head")
        migrations.upgrade(embedded.urls.database_url)
        ensure_bootstrap_admin(settings, embedded.urls)
        children = app_processes(embedded.urls)
        stack.callback(stop_all, children, APP_GRACE)
        for child in children:
            child.start()
        code = Supervisor([*servers, *children], stop).run(on_tick=Announcer(settings))
        logger.info("stopping every process")
    logger.info("stopped")
    return code
