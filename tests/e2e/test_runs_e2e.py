"""Following a run live against the real server and worker processes, as clients do."""

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from gql import Client, GraphQLRequest
from gql.transport.websockets import WebsocketsTransport

from domain.identity.models import RequestMeta, Role
from infra.bootstrap import build_services
from infra.settings import Settings
from tests.conftest import TEST_PASSWORD, TEST_SECRET_KEY
from tests.e2e.conftest import RunningServer
from tests.live import node_and_npm, npm_installed, run_node_tool

pytestmark = pytest.mark.e2e
CLIENT_DIR = Path(__file__).parent / "graphql_ws"
CLIENT_FILES = ("package.json", "package-lock.json", "follow.mjs")
RUN_EVENTS = """
subscription($runId: ID!, $afterSeq: Int) {
  runEvents(runId: $runId, afterSeq: $afterSeq) {
    __typename seq
    ... on RunProgressEvent { fraction }
    ... on RunLogEvent { message }
    ... on RunResultEvent { status result }
  }
}
"""
LOGIN = """
mutation($email: String!, $password: String!) {
  login(input: {email: $email, password: $password}) { accessToken userErrors { code } }
}
"""
START = """
mutation { startRun(input: {task: "demo.count", params: {to: 20, delayMs: 100}}) {
  run { id status } userErrors { code message path } } }
"""
# Events seen before the client drops: the run (about 2 s long) is still going by then.
BEFORE_DROP = 15


async def _create_operator(database_url: str, redis_url: str, email: str) -> None:
    settings = Settings(database_url=database_url, redis_url=redis_url, secret_key=TEST_SECRET_KEY)
    services = build_services(settings, database_url=database_url, redis_url=redis_url)
    try:
        await services.identity.create_user(
            actor=None, meta=RequestMeta(), email=email, password=TEST_PASSWORD, role=Role.OPERATOR
        )
    finally:
        await services.close()


def _post(server: RunningServer, query: str, token: str | None = None, **variables: Any) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    body = {"query": query, "variables": variables}
    return httpx.post(server.graphql_url, json=body, headers=headers, timeout=10).json()


@pytest.fixture(scope="module")
def token(running_server: RunningServer, database_url: str, redis_url: str) -> str:
    """An operator who logged in over HTTP, as a person would."""
    email = f"runs-e2e-{uuid.uuid4().hex[:8]}@example.com"
    asyncio.run(_create_operator(database_url, redis_url, email))
    signed = _post(running_server, LOGIN, email=email, password=TEST_PASSWORD)["data"]["login"]
    assert signed["userErrors"] == []
    access_token: str = signed["accessToken"]
    return access_token


def _start_count(server: RunningServer, token: str) -> str:
    payload = _post(server, START, token)["data"]["startRun"]
    assert payload["userErrors"] == []
    run_id: str = payload["run"]["id"]
    return run_id


def _status(server: RunningServer, token: str, run_id: str) -> str:
    query = "query($id: ID!) { run(id: $id) { status } }"
    status: str = _post(server, query, token, id=run_id)["data"]["run"]["status"]
    return status


def assert_every_event_once_in_order(events: list[dict[str, Any]]) -> None:
    """A whole count to 20: 20 progress and 20 log events, then the result, seq 1 to N."""
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    kinds = [e["__typename"] for e in events]
    assert kinds.count("RunProgressEvent") == 20
    assert [e["message"] for e in events if "message" in e] == [
        f"counted {n} of 20" for n in range(1, 21)
    ]
    assert events[-1] == {
        "__typename": "RunResultEvent",
        "seq": len(events),
        "status": "SUCCEEDED",
        "result": {"count": 20},
    }


async def _follow_with_gql(
    server: RunningServer, token: str, run_id: str, after_seq: int | None, limit: int | None
) -> list[dict[str, Any]]:
    """A run's events through Python's `gql` client, until `limit` or completion."""
    transport = WebsocketsTransport(
        url=server.websocket_url,
        subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
        init_payload={"Authorization": f"Bearer {token}"},
    )
    request = GraphQLRequest(RUN_EVENTS, variable_values={"runId": run_id, "afterSeq": after_seq})
    events: list[dict[str, Any]] = []
    async with Client(transport=transport) as session:
        async for data in session.subscribe(request):
            events.append(data["runEvents"])
            if len(events) == limit:
                break
    return events


async def test_a_python_client_follows_a_count_live_and_resumes_without_loss(
    running_server: RunningServer, token: str
) -> None:
    run_id = _start_count(running_server, token)
    follow = _follow_with_gql
    before = await asyncio.wait_for(follow(running_server, token, run_id, None, BEFORE_DROP), 30)
    # Still running: what arrived so far came live, not from a replay of a finished run.
    assert _status(running_server, token, run_id) == "RUNNING"
    after = await asyncio.wait_for(
        follow(running_server, token, run_id, before[-1]["seq"], None), 30
    )
    assert_every_event_once_in_order(before + after)


def test_the_reference_graphql_ws_client_follows_a_count_and_resumes_without_loss(
    running_server: RunningServer, token: str, request: pytest.FixtureRequest
) -> None:
    node, _ = node_and_npm()
    cache = request.config.cache.mkdir("graphql-ws-client")
    workdir = npm_installed(CLIENT_DIR, CLIENT_FILES, "graphql-ws", cache)
    run_id = _start_count(running_server, token)
    follow = [node, "follow.mjs", running_server.websocket_url, token, run_id]
    first = run_node_tool([*follow, "", str(BEFORE_DROP)], workdir, timeout=60)
    before = [json.loads(line) for line in first.splitlines()]
    assert len(before) == BEFORE_DROP
    assert _status(running_server, token, run_id) == "RUNNING"
    rest = run_node_tool([*follow, str(before[-1]["seq"])], workdir, timeout=60)
    assert_every_event_once_in_order(before + [json.loads(line) for line in rest.splitlines()])
