"""Embedded PostgreSQL and Redis are real servers that keep their data in the data directory."""

import os
import pwd
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis import Redis

from infra.embedded import DataDirLock, EmbeddedError, service_urls
from infra.embedded.postgres import SERVICE_ACCOUNT
from infra.embedded.server import port_problem
from infra.settings import Settings
from tests.live import (
    assert_one_line_error,
    free_port,
    run_taskyard,
    shared_tmp_dir,
    sql,
    taskyard_env,
)


def embedded_settings(data_dir: Path) -> Settings:
    """Settings with no URLs, so both servers are embedded, on ports of their own."""
    return Settings(
        data_dir=str(data_dir),
        embedded_postgres_port=free_port(),
        embedded_redis_port=free_port(),
    )


def redis_client(url: str) -> Redis:
    """A client that fails fast."""
    return Redis.from_url(url, socket_timeout=2, decode_responses=True)


@pytest.fixture
def data_root() -> Iterator[Path]:
    """A temporary directory the PostgreSQL account can reach."""
    with shared_tmp_dir() as path:
        yield path


@pytest.fixture
def listening() -> Iterator[socket.socket]:
    """A socket that holds a loopback port, as another program would."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield taken


def test_servers_accept_clients_and_keep_data_across_restarts(data_root: Path) -> None:
    settings = embedded_settings(data_root / "data")
    with service_urls(settings) as urls:
        assert urls.database_url.endswith(f"127.0.0.1:{settings.embedded_postgres_port}/postgres")
        sql(
            urls.database_url,
            "CREATE TABLE kept (v text)",
            "INSERT INTO kept VALUES ('pg')",
            "SELECT 1",
        )
        redis_client(urls.redis_url).set("kept", "redis")
    assert port_problem("127.0.0.1", settings.embedded_postgres_port) is None
    assert port_problem("127.0.0.1", settings.embedded_redis_port) is None

    with service_urls(settings) as urls:
        assert [r["v"] for r in sql(urls.database_url, "SELECT v FROM kept")] == ["pg"]
        assert redis_client(urls.redis_url).get("kept") == "redis"
    assert (data_root / "data" / "postgres" / "PG_VERSION").is_file()
    assert (data_root / "data" / "redis" / "appendonly.aof").is_file()


def test_running_servers_are_shared_not_restarted(data_root: Path) -> None:
    settings = embedded_settings(data_root)
    with service_urls(settings) as owner:
        with service_urls(settings) as guest:
            assert guest == owner
        # Leaving the guest's block must not stop the owner's servers.
        assert sql(owner.database_url, "SELECT 1 AS one")[0]["one"] == 1
        assert redis_client(owner.redis_url).ping()


def process_ids(pid: int) -> tuple[int, int, list[int]]:
    """The real user ID, real group ID and supplementary groups of a live process."""
    status = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    uid, gid = (int(status[key].split()[0]) for key in ("Uid", "Gid"))
    return uid, gid, [int(group) for group in status["Groups"].split()]


def test_postgres_runs_with_only_the_service_account_s_group(data_root: Path) -> None:
    with service_urls(embedded_settings(data_root / "data")):
        postmaster = (data_root / "data" / "postgres" / "postmaster.pid").read_text()
        ids = process_ids(int(postmaster.split()[0]))
    if os.geteuid() == 0:
        # Root's group 0 would be a privilege leak, and would deny it a root-owned 0701 parent.
        account = pwd.getpwnam(SERVICE_ACCOUNT)
        assert ids == (account.pw_uid, account.pw_gid, [])
    else:
        assert ids[:2] == (os.getuid(), os.getgid())


def test_configured_urls_are_used_untouched(data_root: Path) -> None:
    settings = Settings(
        database_url="postgresql://elsewhere:5432/app",
        redis_url="redis://elsewhere:6379/1",
        data_dir=str(data_root / "never-created"),
    )
    with service_urls(settings) as urls:
        assert (urls.database_url, urls.redis_url) == (settings.database_url, settings.redis_url)
    assert not (data_root / "never-created").exists()


def test_a_taken_port_is_one_clear_error(data_root: Path, listening: socket.socket) -> None:
    port = listening.getsockname()[1]
    settings = Settings(
        data_dir=str(data_root), embedded_postgres_port=free_port(), embedded_redis_port=port
    )
    with pytest.raises(EmbeddedError) as caught, service_urls(settings):
        pass
    message = str(caught.value)
    assert "\n" not in message
    assert f"Redis on 127.0.0.1:{port}: the port is already in use" in message
    # PostgreSQL had started first; it must be stopped again, not left running.
    assert port_problem("127.0.0.1", settings.embedded_postgres_port) is None


def test_an_uncreatable_data_dir_is_one_clear_error(data_root: Path) -> None:
    (data_root / "file").write_text("")
    settings = embedded_settings(data_root / "file" / "data")
    expected = r"^cannot create data directory .*: Not a directory$"
    with pytest.raises(EmbeddedError, match=expected), service_urls(settings):
        pass


def test_the_lock_refuses_a_second_owner_without_disturbing_the_first(data_root: Path) -> None:
    with DataDirLock(data_root) as held:
        with pytest.raises(
            EmbeddedError, match=f"in use by another taskyard process .pid {os.getpid()}"
        ):
            DataDirLock(data_root).acquire()
        assert held.path.read_text() == f"{os.getpid()}\n"
    # Released: the next owner gets it.
    with DataDirLock(data_root):
        pass


@pytest.mark.slow
def test_cli_reports_embedded_failures_in_one_line(
    data_root: Path, listening: socket.socket
) -> None:
    (data_root / "file").write_text("")
    taken = listening.getsockname()[1]
    env = taskyard_env(
        data_root / "data", port=free_port(), postgres_port=taken, redis_port=free_port()
    )
    result = run_taskyard("migrate", "current", env=env, cwd=data_root)
    assert_one_line_error(result, f"PostgreSQL on 127.0.0.1:{taken}", "already in use")

    env["TASKYARD_DATA_DIR"] = str(data_root / "file" / "data")
    env["TASKYARD_EMBEDDED_POSTGRES_PORT"] = str(free_port())
    result = run_taskyard("worker", env=env, cwd=data_root)
    assert_one_line_error(result, "cannot create data directory", "Not a directory")
