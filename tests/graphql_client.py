"""GraphQL as the tests' clients speak it: one operation over HTTP, or over a real WebSocket."""

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect

from tests.live import WS_PROTOCOL

# Long enough for a run of a few seconds to finish on a slow machine.
WITHIN = 30.0


async def gql(
    client: httpx.AsyncClient, query: str, token: str | None = None, **variables: Any
) -> dict[str, Any]:
    """POST one operation, signed in with `token` if given; the decoded body."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = await client.post(
        "/graphql", json={"query": query, "variables": variables}, headers=headers
    )
    body: dict[str, Any] = response.json()
    return body


def codes(body: dict[str, Any]) -> list[str]:
    """The `extensions.code` of each top-level error."""
    return [error["extensions"]["code"] for error in body.get("errors", [])]


async def send(ws: ClientConnection, message: dict[str, Any]) -> None:
    """Send one `graphql-transport-ws` message."""
    await ws.send(json.dumps(message))


async def receive(ws: ClientConnection, within: float = WITHIN) -> dict[str, Any]:
    """The next message from the server."""
    message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), within))
    return message


async def initialised(ws: ClientConnection, token: str) -> None:
    """Send `connection_init` signed in with `token`, and see it acknowledged."""
    await send(ws, {"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}})
    assert await receive(ws) == {"type": "connection_ack"}


@asynccontextmanager
async def signed_in(url: str, token: str) -> AsyncIterator[ClientConnection]:
    """A WebSocket past `connection_init`, signed in with `token`."""
    async with connect(url, subprotocols=[WS_PROTOCOL]) as ws:
        await initialised(ws, token)
        yield ws


async def subscribe(ws: ClientConnection, op_id: str, query: str, **variables: Any) -> None:
    """Start an operation under `op_id`."""
    payload = {"query": query, "variables": variables}
    await send(ws, {"id": op_id, "type": "subscribe", "payload": payload})
