"""A client's view of the real server and worker processes, over HTTP and WebSocket."""

import json
import time
from typing import Any

import httpx
import pytest
from gql import Client, gql
from gql.transport.websockets import WebsocketsTransport

from tests.e2e.conftest import RunningServer

pytestmark = pytest.mark.e2e
HEALTHY_WITHIN = 20.0


def _post(server: RunningServer, query: str, **headers: str) -> httpx.Response:
    return httpx.post(server.graphql_url, json={"query": query}, headers=headers, timeout=10)


def _health(server: RunningServer) -> dict[str, Any]:
    return dict(_post(server, "{ health { status } }").json()["data"]["health"])


def _logged_requests(server: RunningServer, request_id: str) -> list[dict[str, Any]]:
    # The line is written once the response has gone out, so it may trail it slightly.
    deadline = time.monotonic() + 5
    while True:
        lines = [
            json.loads(line) for line in server.log("serve").splitlines() if line.startswith("{")
        ]
        found = [line for line in lines if line.get("request_id") == request_id]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def test_health_is_ok_once_the_worker_beats(running_server: RunningServer) -> None:
    # The worker's first heartbeat may land a moment after /healthz answers.
    deadline = time.monotonic() + HEALTHY_WITHIN
    while (health := _health(running_server))["status"] != "OK" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert health == {"status": "OK"}


def test_ping_is_answered_by_the_worker_process(running_server: RunningServer) -> None:
    query = 'mutation { systemPing(input: {message: "via redis"}) { reply { message worker } } }'
    auth = {"Authorization": f"Bearer {running_server.token}"}
    reply = _post(running_server, query, **auth).json()["data"]["systemPing"]["reply"]
    assert reply["message"] == "via redis"
    assert reply["worker"].endswith(f":{running_server.worker.pid}")


def test_request_id_is_returned_and_logged_with_the_operation(
    running_server: RunningServer,
) -> None:
    response = _post(running_server, "query Probe { version }", **{"X-Request-ID": "e2e-probe-1"})
    assert response.headers["x-request-id"] == "e2e-probe-1"
    logged = _logged_requests(running_server, "e2e-probe-1")
    assert logged == [
        {
            **logged[0],
            "method": "POST",
            "path": "/graphql",
            "status": 200,
            "operation": "Probe",
        }
    ]
    assert logged[0]["duration_ms"] >= 0


async def test_query_over_websocket_with_a_graphql_client(running_server: RunningServer) -> None:
    transport = WebsocketsTransport(
        url=running_server.websocket_url,
        subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
        init_payload={"Authorization": f"Bearer {running_server.token}"},
    )
    async with Client(transport=transport) as session:
        result = await session.execute(gql("query Both { version health { status } }"))
    assert set(result) == {"version", "health"}
    assert result["health"]["status"] in {"OK", "DEGRADED"}
