"""The `taskyard` command as an operator runs it: real processes, real services."""

import asyncio
import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from infra.bootstrap import Services
from infra.db import migrations

TASKYARD = str(Path(sys.executable).with_name("taskyard"))


class Taskyard:
    """Runs `taskyard` in an empty directory with only the given TASKYARD_* variables."""

    def __init__(self, cwd: Path, settings: dict[str, str]) -> None:
        self.cwd = cwd
        self.settings = settings

    def __call__(self, *args: str, **overrides: str) -> subprocess.CompletedProcess[str]:
        """Run one command to completion; keyword arguments set or override variables."""
        environ = {k: v for k, v in os.environ.items() if not k.startswith("TASKYARD_")}
        environ |= self.settings | overrides
        return subprocess.run(
            [TASKYARD, *args],
            cwd=self.cwd,
            env=environ,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )


@pytest.fixture
def taskyard(tmp_path: Path, database_url: str, redis_url: str) -> Taskyard:
    """`taskyard` pointed at the test database and Redis."""
    return Taskyard(
        tmp_path,
        {
            "TASKYARD_DATABASE_URL": database_url,
            "TASKYARD_REDIS_URL": redis_url,
            "TASKYARD_DATA_DIR": str(tmp_path / "data"),
        },
    )


def assert_one_line_failure(result: subprocess.CompletedProcess[str], *names: str) -> None:
    """The process failed with a single stderr line naming each of `names`, no traceback."""
    assert result.returncode != 0
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert all(name in lines[0] for name in names), lines[0]
    assert "Traceback" not in result.stderr + result.stdout


HELP = {
    (): "GraphQL",
    ("dev",): "embedded PostgreSQL and Redis",
    ("serve",): "GraphQL",
    ("worker",): "queued jobs",
    ("migrate",): "schema",
    ("migrate", "upgrade"): "newest revision",
    ("migrate", "downgrade"): "down to a revision",
    ("migrate", "current"): "database's revision",
    ("config",): "redacted",
    ("export-schema",): "SDL",
    ("users",): "user accounts",
    ("users", "create"): "Add a user",
    ("tokens",): "API tokens",
    ("tokens", "create"): "printed once",
}


def description(help_text: str) -> str:
    """The paragraph after the usage line, whitespace normalised."""
    return " ".join(help_text.split("\n\n")[1].split())


def test_help_says_what_each_command_does(taskyard: Taskyard) -> None:
    # Each process takes about a second to start, so they run side by side.
    with ThreadPoolExecutor(max_workers=len(HELP)) as pool:
        results = dict(zip(HELP, pool.map(lambda c: taskyard(*c, "--help"), HELP), strict=True))
    unhelpful = {
        " ".join(command): result.stdout or result.stderr
        for command, result in results.items()
        if result.returncode != 0 or HELP[command] not in description(result.stdout)
    }
    assert unhelpful == {}


def test_config_prints_settings_as_json_with_the_password_redacted(taskyard: Taskyard) -> None:
    url = "postgresql://taskyard:s3cr3t-pw@db.example:5432/taskyard"
    result = taskyard("config", TASKYARD_DATABASE_URL=url, TASKYARD_PORT="8123")
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["TASKYARD_DATABASE_URL"] == "postgresql://taskyard:***@db.example:5432/taskyard"
    assert shown["TASKYARD_PORT"] == 8123
    assert "s3cr3t-pw" not in result.stdout


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("TASKYARD_PORT", "abc"),
        ("TASKYARD_NO_SUCH_SETTING", "1"),
        ("TASKYARD_DATABASE_URL", "mysql://db.example/taskyard"),
        ("TASKYARD_REDIS_URL", "redis://cache:port/0"),
    ],
)
def test_a_bad_setting_stops_every_command_with_one_line(
    taskyard: Taskyard, variable: str, value: str
) -> None:
    assert_one_line_failure(taskyard("migrate", "current", **{variable: value}), variable)


def test_a_bad_line_in_env_file_stops_with_one_line(taskyard: Taskyard) -> None:
    (taskyard.cwd / ".env").write_text("TASKYARD_PORT=8000\nnot a setting\n")
    assert_one_line_failure(taskyard("config"), ".env:2")


def test_an_unreachable_database_is_one_line(
    taskyard: Taskyard, unused_port: Callable[[], int]
) -> None:
    closed = f"postgresql://postgres@127.0.0.1:{unused_port()}/taskyard"
    result = taskyard("migrate", "current", TASKYARD_DATABASE_URL=closed)
    assert_one_line_failure(result, "PostgreSQL")


def test_an_unreachable_redis_is_one_line(
    taskyard: Taskyard, unused_port: Callable[[], int]
) -> None:
    closed = f"redis://127.0.0.1:{unused_port()}/0"
    assert_one_line_failure(taskyard("worker", TASKYARD_REDIS_URL=closed), "Redis")


def test_serve_on_a_port_in_use_is_one_line(taskyard: Taskyard) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        result = taskyard("serve", TASKYARD_PORT=port)
    assert_one_line_failure(result, port, "in use")


def test_export_schema_prints_sdl_or_writes_a_file(taskyard: Taskyard) -> None:
    printed = taskyard("export-schema")
    assert printed.returncode == 0, printed.stderr
    assert "type Query {" in printed.stdout
    written = taskyard("export-schema", "-o", "schema.graphql")
    assert written.returncode == 0, written.stderr
    assert (taskyard.cwd / "schema.graphql").read_text() == printed.stdout


def test_migrate_current_shows_the_database_at_head(taskyard: Taskyard) -> None:
    result = taskyard("migrate", "current")
    assert result.returncode == 0, result.stderr
    head = migrations.head_revision()
    assert result.stdout.split() == ["current:", str(head), "head:", str(head)]


def test_migrate_upgrades_and_downgrades_a_database(
    taskyard: Taskyard, empty_database_url: str
) -> None:
    def run(*action: str) -> str:
        result = taskyard("migrate", *action, TASKYARD_DATABASE_URL=empty_database_url)
        assert result.returncode == 0, result.stderr
        return result.stdout

    head = str(migrations.head_revision())
    assert run("current").split()[:2] == ["current:", "base"]
    run("upgrade")
    assert run("current").split()[:2] == ["current:", head]
    run("downgrade", "base")
    assert run("current").split()[:2] == ["current:", "base"]


async def test_users_create_then_tokens_create_gives_a_working_token(
    taskyard: Taskyard, services: Services
) -> None:
    created = await asyncio.to_thread(
        taskyard,
        "users",
        "create",
        "--email",
        "Ops@Example.com",
        "--password",
        "a long password 1",
        "--role",
        "operator",
    )
    assert created.returncode == 0, created.stderr
    assert "operator ops@example.com" in created.stdout
    issued = await asyncio.to_thread(
        taskyard,
        "tokens",
        "create",
        "--email",
        "ops@example.com",
        "--name",
        "ci",
        "--scopes",
        "read,write",
    )
    assert issued.returncode == 0, issued.stderr
    secret = issued.stdout.strip()
    assert secret.startswith("tky_")
    viewer = await services.identity.authenticate(secret)
    assert {s.value for s in viewer.scopes} == {"read", "write"}


def test_users_create_reads_the_password_from_stdin(taskyard: Taskyard) -> None:
    result = subprocess.run(
        [TASKYARD, "users", "create", "--email", "stdin@example.com"],
        input="a long password 2\n",
        cwd=taskyard.cwd,
        capture_output=True,
        text=True,
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("TASKYARD_")},
            **taskyard.settings,
        },
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (("users", "create", "--email", "bad", "--password", "a long password 1"), ("--email",)),
        (("users", "create", "--email", "a@example.com", "--password", "short"), ("--password",)),
        (("tokens", "create", "--email", "nobody@example.com", "--name", "x"), ("--email",)),
        (
            ("tokens", "create", "--email", "a@example.com", "--name", "x", "--scopes", "root"),
            ("--scopes",),
        ),
    ],
)
def test_account_commands_refuse_bad_input_in_one_line(
    taskyard: Taskyard, args: tuple[str, ...], names: tuple[str, ...]
) -> None:
    assert_one_line_failure(taskyard(*args), *names)
