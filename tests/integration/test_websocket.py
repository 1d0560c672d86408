"""GraphQL over WebSocket (`graphql-transport-ws` only) on a real uvicorn server and socket."""

import asyncio
from typing import Any

import httpx
import msgspec
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.typing import Origin, Subprotocol

from api.app import create_app
from domain.identity.models import RequestMeta
from infra.bootstrap import Services
from infra.settings import Settings
from tests.conftest import TEST_PASSWORD, sign_in
from tests.graphql_client import initialised, receive, send
from tests.live import WS_PROTOCOL as PROTOCOL
from tests.live import served

INIT_TIMEOUT = 10.0


async def _close_code(ws: ClientConnection, within: float = 5) -> int | None:
    with pytest.raises(ConnectionClosed):
        await asyncio.wait_for(ws.recv(), within)
    return ws.close_code


async def _drain(ws: ClientConnection) -> None:
    while True:
        await ws.recv()


async def _close_code_after_messages(ws: ClientConnection, within: float = 5) -> int | None:
    """The close code, reading past any messages sent first; fail if none comes `within` s."""
    with pytest.raises(ConnectionClosed):
        await asyncio.wait_for(_drain(ws), within)
    return ws.close_code


async def test_handshake_accepts_only_graphql_transport_ws(ws_url: str) -> None:
    async with connect(ws_url, subprotocols=[PROTOCOL]) as ws:
        assert ws.subprotocol == PROTOCOL
        assert ws.response is not None
        assert ws.response.headers["x-request-id"]


@pytest.mark.parametrize("offered", [["graphql-ws"], ["chat"], None])
async def test_other_subprotocols_are_closed_with_4406(
    ws_url: str, offered: list[Subprotocol] | None
) -> None:
    async with connect(ws_url, subprotocols=offered) as ws:
        assert ws.subprotocol is None
        assert await _close_code(ws) == 4406


async def test_ping_gets_pong(ws_url: str, operator_token: str) -> None:
    async with connect(ws_url, subprotocols=[PROTOCOL]) as ws:
        await initialised(ws, operator_token)
        await send(ws, {"type": "ping"})
        assert await receive(ws) == {"type": "pong"}


async def test_a_query_subscribed_to_yields_one_result_then_completes(
    ws_url: str, operator_token: str
) -> None:
    async with connect(ws_url, subprotocols=[PROTOCOL]) as ws:
        await initialised(ws, operator_token)
        await send(ws, {"id": "1", "type": "subscribe", "payload": {"query": "{ version }"}})
        result = await receive(ws)
        assert result["type"] == "next"
        assert result["id"] == "1"
        assert set(result["payload"]["data"]) == {"version"}
        assert await receive(ws) == {"id": "1", "type": "complete"}


async def test_an_unknown_message_closes_with_4400(ws_url: str, operator_token: str) -> None:
    async with connect(ws_url, subprotocols=[PROTOCOL]) as ws:
        await initialised(ws, operator_token)
        await send(ws, {"type": "no-such-message"})
        assert await _close_code(ws) == 4400


async def test_subscribing_before_init_closes_with_4401(ws_url: str) -> None:
    async with connect(ws_url, subprotocols=[PROTOCOL]) as ws:
        await send(ws, {"id": "1", "type": "subscribe", "payload": {"query": "{ version }"}})
        assert await _close_code(ws) == 4401


async def test_a_second_init_closes_with_4429(ws_url: str, operator_token: str) -> None:
    async with connect(ws_url, subprotocols=[PROTOCOL]) as ws:
        await initialised(ws, operator_token)
        await send(ws, {"type": "connection_init"})
        assert await _close_code(ws) == 4429


@pytest.mark.slow
async def test_a_silent_client_is_closed_with_4408_after_the_init_timeout(ws_url: str) -> None:
    async with connect(ws_url, subprotocols=[PROTOCOL]) as ws:
        assert await _close_code(ws, within=INIT_TIMEOUT + 5) == 4408


async def test_a_page_from_another_origin_is_refused(ws_url: str) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with connect(ws_url, subprotocols=[PROTOCOL], origin=Origin("http://evil.example")):
            pass
    assert refused.value.response.status_code == 403


async def test_an_allowed_origin_may_connect(
    settings: Settings, services: Services, operator_token: str
) -> None:
    allowing = msgspec.structs.replace(settings, ws_allowed_origins="http://ui.example")
    async with (
        served(create_app(allowing, services)) as url,
        connect(url, subprotocols=[PROTOCOL], origin=Origin("http://ui.example")) as ws,
    ):
        await initialised(ws, operator_token)


async def test_a_connection_without_credentials_is_refused(ws_url: str) -> None:
    async with connect(ws_url, subprotocols=[PROTOCOL]) as ws:
        await send(ws, {"type": "connection_init"})
        assert await _close_code(ws) == 4403


async def test_a_forged_token_is_refused(ws_url: str) -> None:
    async with connect(ws_url, subprotocols=[PROTOCOL]) as ws:
        await send(ws, {"type": "connection_init", "payload": {"Authorization": "Bearer x.y.z"}})
        assert await _close_code(ws) == 4403


async def test_no_subscription_before_connection_init(ws_url: str) -> None:
    async with connect(ws_url, subprotocols=[PROTOCOL]) as ws:
        await send(ws, {"id": "1", "type": "subscribe", "payload": {"query": "{ version }"}})
        assert await _close_code(ws) == 4401


async def test_logout_closes_a_live_subscription_within_five_seconds(
    ws_url: str, services: Services
) -> None:
    token = await sign_in(services)
    viewer = await services.identity.authenticate(token)
    subscription = "subscription { health(intervalSeconds: 1) { status } }"
    async with connect(ws_url, subprotocols=[PROTOCOL]) as ws:
        await initialised(ws, token)
        await send(ws, {"id": "1", "type": "subscribe", "payload": {"query": subscription}})
        first = await receive(ws)
        assert first["type"] == "next"
        await services.identity.logout(viewer=viewer, meta=RequestMeta())
        assert await _close_code_after_messages(ws) == 4403


async def _post(url: str, query: str, token: str | None = None, **variables: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(timeout=5) as http:
        return await http.post(url, json={"query": query, "variables": variables}, headers=headers)


async def test_logout_over_http_ends_the_token_and_closes_its_subscriptions(
    ws_url: str, services: Services
) -> None:
    http_url = "http" + ws_url.removeprefix("ws")
    await services.identity.create_user(
        actor=None, meta=RequestMeta(), email="ada@example.com", password=TEST_PASSWORD
    )
    login = """mutation($e: String!, $p: String!) {
      login(input: {email: $e, password: $p}) { accessToken } }"""
    signed_in = await _post(http_url, login, e="ada@example.com", p=TEST_PASSWORD)
    token = signed_in.json()["data"]["login"]["accessToken"]
    subscription = "subscription { health(intervalSeconds: 1) { status } }"
    async with connect(ws_url, subprotocols=[PROTOCOL]) as ws:
        await initialised(ws, token)
        await send(ws, {"id": "1", "type": "subscribe", "payload": {"query": subscription}})
        assert (await receive(ws))["type"] == "next"

        logout = await _post(http_url, "mutation { logout { userErrors { code } } }", token)
        assert logout.json()["data"] == {"logout": {"userErrors": []}}
        assert await _close_code_after_messages(ws) == 4403
    after = await _post(http_url, "{ version }", token)
    assert after.status_code == 401
    assert after.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
