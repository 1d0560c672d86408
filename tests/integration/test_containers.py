"""Containerfile and docker-compose.yml run real commands with real settings, on the right port.

No container engine runs here, so both files are parsed and checked against the CLI's parser
and the settings; the image's health probe is run against a live server.
"""

import asyncio
import contextlib
import io
import json
import os
import re
import shlex
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from litestar import Litestar

from infra.settings import Settings, load_settings
from taskyard.cli import _parser
from tests.live import free_port, served

ROOT = Path(__file__).resolve().parents[2]
SETTING_VARIABLES = {f"TASKYARD_{name.upper()}" for name in Settings.__struct_fields__}
# Values an operator must supply; compose refuses to start without them.
OPERATOR_VALUES = {"TASKYARD_SECRET_KEY": "k" * 40}
TASKYARD_SERVICES = ("migrate", "api", "worker")


@dataclass(frozen=True, slots=True)
class Instruction:
    """One Containerfile instruction, with the build stage it belongs to (0 before any FROM)."""

    stage: int
    keyword: str
    args: str


def _logical_lines(text: str) -> Iterator[str]:
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        yield pending + line
        pending = ""


def parse_containerfile(text: str) -> list[Instruction]:
    """Instructions in order, continuation lines joined and comments dropped."""
    instructions, stage = [], 0
    for line in _logical_lines(text):
        keyword, _, args = line.partition(" ")
        stage += keyword.upper() == "FROM"
        instructions.append(Instruction(stage, keyword.upper(), args.strip()))
    return instructions


def command_words(args: str) -> list[str]:
    """The words of an exec-form (JSON) or shell-form command."""
    return list(json.loads(args)) if args.startswith("[") else shlex.split(args)


def env_pairs(args: str) -> dict[str, str]:
    """The variables one ENV instruction sets."""
    return dict(word.split("=", 1) for word in shlex.split(args))


@pytest.fixture(scope="module")
def containerfile() -> list[Instruction]:
    """The parsed Containerfile."""
    return parse_containerfile((ROOT / "Containerfile").read_text())


@pytest.fixture(scope="module")
def final_stage(containerfile: list[Instruction]) -> list[Instruction]:
    """Instructions of the stage that becomes the image."""
    last = containerfile[-1].stage
    return [i for i in containerfile if i.stage == last]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """The parsed docker-compose.yml."""
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded


def assert_cli_accepts(words: list[str]) -> None:
    """`taskyard ...` parses with the real CLI parser, exactly as the process would get it."""
    assert words[0] == "taskyard", words
    with contextlib.redirect_stderr(io.StringIO()) as errors:
        try:
            _parser().parse_args(words[1:])
        except SystemExit:
            pytest.fail(f"not a taskyard command: {shlex.join(words)}: {errors.getvalue()}")


def interpolate(value: str) -> str:
    """Resolve compose's ${NAME:-default} and ${NAME:?error} as a fresh deployment would."""

    def resolve(match: re.Match[str]) -> str:
        name, operator, fallback = match.group(1), match.group(2), match.group(3)
        if operator == ":-":
            return fallback
        assert name in OPERATOR_VALUES, f"${{{name}}} has no default and is not expected"
        return OPERATOR_VALUES[name]

    return re.sub(r"\$\{(\w+)(:-|:\?)?([^}]*)\}", resolve, value)


def image_env(final_stage: list[Instruction]) -> dict[str, str]:
    """Every variable the image sets for its processes."""
    env: dict[str, str] = {}
    for instruction in final_stage:
        if instruction.keyword == "ENV":
            env |= env_pairs(instruction.args)
    return env


def service_env(compose: dict[str, Any], service: str) -> dict[str, str]:
    """A service's environment as a process in it would see it, over the image's."""
    return {k: interpolate(str(v)) for k, v in compose["services"][service]["environment"].items()}


def _taskyard_variables(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k.startswith("TASKYARD_")}


def test_image_is_multi_stage_and_runs_as_a_user(
    containerfile: list[Instruction], final_stage: list[Instruction]
) -> None:
    bases = [i.args for i in containerfile if i.keyword == "FROM"]
    assert len(bases) >= 2
    assert any("--from=builder" in i.args for i in final_stage if i.keyword == "COPY")
    users = [i.args.split(":")[0] for i in final_stage if i.keyword == "USER"]
    assert users, "the final stage never leaves root"
    assert users[-1] not in ("root", "0")


def test_image_builds_graphiql_assets_from_the_lock_file(containerfile: list[Instruction]) -> None:
    builds = [i for i in containerfile if i.keyword == "RUN" and "build_graphiql.py" in i.args]
    assert builds
    assert builds[0].stage < containerfile[-1].stage
    ignored = (ROOT / ".containerignore").read_text().splitlines()
    assert "api/graphiql/static" in ignored, "host-built assets would overwrite the image's"


def test_image_commands_are_real_cli_commands(final_stage: list[Instruction]) -> None:
    commands = [command_words(i.args) for i in final_stage if i.keyword in ("CMD", "ENTRYPOINT")]
    assert commands == [["taskyard", "serve"]]
    assert_cli_accepts(commands[0])


def test_image_variables_are_settings_and_expose_the_default_port(
    final_stage: list[Instruction],
) -> None:
    variables = _taskyard_variables(image_env(final_stage))
    assert set(variables) <= SETTING_VARIABLES
    settings = load_settings(variables | OPERATOR_VALUES, env_file=None)
    assert settings.host == "0.0.0.0"
    exposed = [
        int(p.split("/")[0]) for i in final_stage if i.keyword == "EXPOSE" for p in i.args.split()
    ]
    assert exposed == [settings.port] == [Settings().port]


def _healthcheck(final_stage: list[Instruction]) -> list[str]:
    (check,) = [i.args for i in final_stage if i.keyword == "HEALTHCHECK"]
    options, _, command = check.partition("CMD ")
    assert all(word.startswith("--") for word in options.split())
    return command_words(command.strip())


@pytest.fixture
async def live_port(app: Litestar) -> AsyncIterator[int]:
    """The app served over real HTTP on a free loopback port."""
    async with served(app) as url:
        port = urlsplit(url).port
        assert port is not None
        yield port


async def _probe(command: list[str], port: int) -> int:
    assert command[0] == "python", command
    env = {**os.environ, "TASKYARD_PORT": str(port)}
    process = await asyncio.create_subprocess_exec(
        sys.executable, *command[1:], env=env, stderr=asyncio.subprocess.DEVNULL
    )
    return await asyncio.wait_for(process.wait(), 30)


async def test_image_healthcheck_probes_healthz_on_the_serving_port(
    final_stage: list[Instruction], live_port: int
) -> None:
    command = _healthcheck(final_stage)
    assert "/healthz" in " ".join(command)
    assert await _probe(command, live_port) == 0
    assert await _probe(command, free_port()) != 0


def test_compose_runs_the_whole_platform(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"postgres", "redis", *TASKYARD_SERVICES}
    assert services["postgres"]["image"].startswith("postgres:")
    assert services["postgres"]["healthcheck"]["test"][1] == "pg_isready"
    assert services["redis"]["image"].startswith("redis:")
    assert services["redis"]["healthcheck"]["test"][1:] == ["redis-cli", "ping"]
    for name in TASKYARD_SERVICES:
        assert services[name]["build"]["dockerfile"] == "Containerfile"


@pytest.mark.parametrize("service", TASKYARD_SERVICES)
def test_compose_commands_are_real_cli_commands(compose: dict[str, Any], service: str) -> None:
    assert_cli_accepts(compose["services"][service]["command"])


@pytest.mark.parametrize("service", TASKYARD_SERVICES)
def test_compose_variables_are_valid_production_settings(
    compose: dict[str, Any], service: str
) -> None:
    variables = _taskyard_variables(service_env(compose, service))
    assert set(variables) <= SETTING_VARIABLES
    settings = load_settings(variables, env_file=None)
    assert settings.is_production
    assert settings.database_url
    assert "@postgres:" in settings.database_url
    assert settings.redis_url
    assert "//redis:" in settings.redis_url


def test_compose_starts_services_in_order(compose: dict[str, Any]) -> None:
    services = compose["services"]
    conditions = {
        name: {dep: spec["condition"] for dep, spec in services[name]["depends_on"].items()}
        for name in TASKYARD_SERVICES
    }
    ready = {"postgres": "service_healthy", "redis": "service_healthy"}
    migrated = {"migrate": "service_completed_successfully"}
    assert conditions == {"migrate": ready, "api": ready | migrated, "worker": ready | migrated}
    assert services["migrate"]["restart"] == "no"


def test_compose_publishes_the_api_port_and_probes_healthz(
    compose: dict[str, Any], final_stage: list[Instruction]
) -> None:
    api = compose["services"]["api"]
    env = image_env(final_stage) | service_env(compose, "api")
    port = load_settings(_taskyard_variables(env), env_file=None).port
    assert [p.rsplit(":", 1)[1] for p in api["ports"]] == [str(port)]
    probed = re.findall(r"http://127\.0\.0\.1:(\d+)(/\w*)", " ".join(api["healthcheck"]["test"]))
    assert probed == [(str(port), "/healthz")]
