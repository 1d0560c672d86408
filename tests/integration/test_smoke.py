"""The API answers health and a worker answers a ping through Redis."""

import httpx


async def test_health_reports_every_component(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/graphql", json={"query": "{ health { status components { name status } } }"}
    )
    body = response.json()
    names = {c["name"] for c in body["data"]["health"]["components"]}
    assert names == {"database", "redis", "migrations", "worker"}


async def test_ping_travels_through_a_worker(client: httpx.AsyncClient, worker: None) -> None:
    response = await client.post(
        "/graphql",
        json={
            "query": 'mutation { systemPing(input: {message: "hello"}) { reply { message worker } userErrors { code } } }'
        },
    )
    payload = response.json()["data"]["systemPing"]
    assert payload["userErrors"] == []
    assert payload["reply"]["message"] == "hello"
