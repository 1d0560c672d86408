"""In production mode, each probing or CSRF-shaped request is refused or finds nothing."""

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.conftest import ClientFactory


@pytest.fixture
async def prod(make_client: ClientFactory) -> AsyncIterator[httpx.AsyncClient]:
    async with make_client(
        env="production", secret_key="p" * 40, graphiql=None, introspection=None, get_queries=None
    ) as http:
        yield http


def _codes(response: httpx.Response) -> list[str]:
    body: dict[str, Any] = response.json()
    return [e.get("extensions", {}).get("code") for e in body.get("errors", [])]


async def test_introspection_is_refused(prod: httpx.AsyncClient) -> None:
    response = await prod.post("/graphql", json={"query": "{ __schema { types { name } } }"})
    assert set(_codes(response)) == {"GRAPHQL_VALIDATION_FAILED"}
    assert "data" not in response.json()


async def test_field_suggestions_are_absent(prod: httpx.AsyncClient) -> None:
    response = await prod.post("/graphql", json={"query": "{ healt { status } }"})
    message = response.json()["errors"][0]["message"]
    assert "Did you mean" not in message
    assert "health" not in message


async def test_a_hundred_and_one_aliases_are_refused(prod: httpx.AsyncClient) -> None:
    query = "{ " + " ".join(f"a{i}: version" for i in range(101)) + " }"
    response = await prod.post("/graphql", json={"query": query})
    assert _codes(response) == ["GRAPHQL_VALIDATION_FAILED"]


async def test_ten_unknown_directives_on_one_field_are_refused(prod: httpx.AsyncClient) -> None:
    query = "{ version " + " ".join(f"@d{i}" for i in range(10)) + " }"
    response = await prod.post("/graphql", json={"query": query})
    codes = _codes(response)
    assert codes
    assert set(codes) == {"GRAPHQL_VALIDATION_FAILED"}
    assert "data" not in response.json()


async def test_an_array_batch_of_ten_is_refused(prod: httpx.AsyncClient) -> None:
    response = await prod.post("/graphql", json=[{"query": "{ version }"}] * 10)
    assert response.status_code == 400
    assert "data" not in response.json()


async def test_a_get_query_is_refused(prod: httpx.AsyncClient) -> None:
    response = await prod.get("/graphql", params={"query": "{ version }"})
    assert response.status_code == 405
    assert "data" not in response.json()


async def test_a_get_mutation_is_refused(prod: httpx.AsyncClient) -> None:
    response = await prod.get(
        "/graphql", params={"query": "mutation { logout { session { id } } }"}
    )
    assert response.status_code == 405


async def test_a_url_encoded_post_is_refused(prod: httpx.AsyncClient) -> None:
    response = await prod.post("/graphql", data={"query": "{ version }"})
    assert response.status_code == 415


async def test_graphiql_is_not_served(prod: httpx.AsyncClient) -> None:
    response = await prod.get("/graphql", headers={"accept": "text/html"})
    assert "graphiql" not in response.text.lower()
    assert response.status_code in (404, 405, 406)


async def test_no_traceback_reaches_the_client(
    prod: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    import api.system.queries

    def explode() -> str:
        raise RuntimeError("secret internals at /srv/app.py line 42")

    monkeypatch.setattr(api.system.queries, "taskyard_version", explode)
    response = await prod.post("/graphql", json={"query": "{ version }"})
    text = response.text
    assert "Traceback" not in text
    assert "secret internals" not in text
    assert _codes(response) == ["INTERNAL"]
