"""The API answers health and a worker answers a ping through Redis."""

import httpx

HEALTH = "{ health { status components { name status } } }"
PING = """
mutation { systemPing(input: {message: "hello"}) { reply { message worker } userErrors { code } } }
"""


async def test_health_reports_every_component(client: httpx.AsyncClient) -> None:
    response = await client.post("/graphql", json={"query": HEALTH})
    names = {c["name"] for c in response.json()["data"]["health"]["components"]}
    assert names == {"database", "redis", "migrations", "worker"}


async def test_ping_travels_through_a_worker(
    client: httpx.AsyncClient, worker: None, auth: dict[str, str]
) -> None:
    response = await client.post("/graphql", json={"query": PING}, headers=auth)
    payload = response.json()["data"]["systemPing"]
    assert payload["userErrors"] == []
    assert payload["reply"]["message"] == "hello"
