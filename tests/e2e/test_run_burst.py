"""A burst of 1,000 runs from ten clients at once, against the real server and worker processes.

Every run must end SUCCEEDED, none may be lost, and none may have its body succeed twice.
"""

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from domain.identity.models import RequestMeta, Role
from infra.bootstrap import build_services
from infra.settings import Settings
from tests.conftest import TEST_PASSWORD, TEST_SECRET_KEY
from tests.e2e.conftest import RunningServer

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CLIENTS = 10
RUNS_EACH = 100
# The built-in plan whose daily quota and concurrency a hundred runs a user stay within.
PLAN = "enterprise"
START = """
mutation { startRun(input: {task: "demo.count", params: {to: 1, delayMs: 0}}) {
  run { id status } userErrors { code message path } } }
"""
# A client's own runs: it sees no one else's, so one page of a hundred holds them all.
OWN_RUNS = """
query { runs(first: 100) {
  totalCount edges { node { id status attempts { outcome } } } } }
"""
POLL_EVERY = 0.5
Runs = list[dict[str, Any]]
# A liveness bound, not a performance target: a healthy machine finishes well within it.
FINISH_WITHIN = 180.0


async def _signed_in_clients(database_url: str, redis_url: str) -> list[str]:
    """Access tokens of `CLIENTS` new operators on a plan that admits a hundred runs each."""
    settings = Settings(database_url=database_url, redis_url=redis_url, secret_key=TEST_SECRET_KEY)
    services = build_services(settings, database_url=database_url, redis_url=redis_url)
    meta = RequestMeta(ip="127.0.0.1", request_id="burst-setup")
    tokens = []
    try:
        for number in range(CLIENTS):
            email = f"burst-{number}-{uuid.uuid4().hex[:8]}@example.com"
            await services.identity.create_user(
                actor=None,
                meta=meta,
                email=email,
                password=TEST_PASSWORD,
                role=Role.OPERATOR,
                plan=PLAN,
            )
            signed = await services.identity.login(email=email, password=TEST_PASSWORD, meta=meta)
            tokens.append(signed.access_token)
    finally:
        await services.close()
    return tokens


@asynccontextmanager
async def _client(server: RunningServer, token: str) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=server.base_url, headers=headers, timeout=30) as http:
        yield http


async def _graphql(http: httpx.AsyncClient, query: str) -> dict[str, Any]:
    response = await http.post("/graphql", json={"query": query})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert "errors" not in body, body
    data: dict[str, Any] = body["data"]
    return data


async def _start_all(server: RunningServer, token: str) -> list[str]:
    """One client's hundred starts, back to back."""
    started = []
    async with _client(server, token) as http:
        for _ in range(RUNS_EACH):
            payload = (await _graphql(http, START))["startRun"]
            assert payload["userErrors"] == [], payload
            started.append(payload["run"]["id"])
    return started


async def _own_runs(server: RunningServer, token: str) -> Runs:
    async with _client(server, token) as http:
        runs = (await _graphql(http, OWN_RUNS))["runs"]
    nodes: Runs = [edge["node"] for edge in runs["edges"]]
    assert runs["totalCount"] == len(nodes), runs["totalCount"]
    return nodes


async def _when_all_final(server: RunningServer, tokens: list[str]) -> Runs:
    """Every client's runs, once none is QUEUED or RUNNING any more."""
    deadline = asyncio.get_running_loop().time() + FINISH_WITHIN
    while True:
        seen = await asyncio.gather(*(_own_runs(server, token) for token in tokens))
        runs = [run for own in seen for run in own]
        pending = [run for run in runs if run["status"] in ("QUEUED", "RUNNING")]
        if not pending:
            return runs
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"{len(pending)} of {len(runs)} runs unfinished after {FINISH_WITHIN:g} s")
        await asyncio.sleep(POLL_EVERY)


async def _burst(
    server: RunningServer, tokens: list[str]
) -> tuple[list[str], list[dict[str, Any]]]:
    started = await asyncio.gather(*(_start_all(server, token) for token in tokens))
    return [run_id for own in started for run_id in own], await _when_all_final(server, tokens)


def test_a_burst_of_a_thousand_runs_all_succeed_once(
    running_server: RunningServer, database_url: str, redis_url: str
) -> None:
    tokens = asyncio.run(_signed_in_clients(database_url, redis_url))
    started, finished = asyncio.run(_burst(running_server, tokens))

    assert len(started) == len(set(started)) == CLIENTS * RUNS_EACH
    # None lost: every started run is in its creator's list, and nothing else is.
    assert sorted(run["id"] for run in finished) == sorted(started)
    assert {run["status"] for run in finished} == {"SUCCEEDED"}
    succeeded_attempts = {
        run["id"]: [a["outcome"] for a in run["attempts"]].count("SUCCEEDED") for run in finished
    }
    assert set(succeeded_attempts.values()) == {1}
