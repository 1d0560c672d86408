"""POST and GET /graphql as the GraphQL-over-HTTP spec says, for both response media types."""

import logging
from collections.abc import AsyncIterator

import httpx
import pytest

from api.schema import TaskyardSchema
from infra.bootstrap import Services
from infra.queue import QUEUE_NAME
from tests.conftest import ClientFactory

JSON = "application/json"
GRAPHQL_RESPONSE = "application/graphql-response+json"
PING = "mutation { systemPing { reply { message } } }"


async def _post(
    client: httpx.AsyncClient, body: object, accept: str | None = JSON
) -> httpx.Response:
    headers = {"accept": accept} if accept else {}
    return await client.post("/graphql", json=body, headers=headers)


@pytest.mark.parametrize("accept", [JSON, GRAPHQL_RESPONSE, None, "*/*"])
async def test_a_query_answers_200_in_the_negotiated_media_type(
    client: httpx.AsyncClient, accept: str | None
) -> None:
    response = await _post(client, {"query": "{ __typename }"}, accept)
    assert response.status_code == 200
    expected = GRAPHQL_RESPONSE if accept == GRAPHQL_RESPONSE else JSON
    assert response.headers["content-type"].split(";")[0] == expected
    assert response.json()["data"] == {"__typename": "Query"}


@pytest.mark.parametrize(
    ("query", "code"),
    [("{ __typename", "GRAPHQL_PARSE_FAILED"), ("{ noSuchField }", "GRAPHQL_VALIDATION_FAILED")],
)
@pytest.mark.parametrize(("accept", "status"), [(JSON, 200), (GRAPHQL_RESPONSE, 400)])
async def test_a_bad_document_is_a_request_error_without_data(
    client: httpx.AsyncClient, query: str, code: str, accept: str, status: int
) -> None:
    response = await _post(client, {"query": query}, accept)
    assert response.status_code == status
    body = response.json()
    assert "data" not in body
    assert [e["extensions"]["code"] for e in body["errors"]] == [code]


@pytest.mark.parametrize(("accept", "status"), [(JSON, 200), (GRAPHQL_RESPONSE, 400)])
async def test_bad_variables_are_a_request_error_without_data(
    client: httpx.AsyncClient, accept: str, status: int
) -> None:
    query = "mutation($input: SystemPingInput) { systemPing(input: $input) { reply { message } } }"
    response = await _post(client, {"query": query, "variables": {"input": {"message": 5}}}, accept)
    assert response.status_code == status
    assert "data" not in response.json()
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


@pytest.mark.parametrize(
    "body",
    [
        [{"query": "{ __typename }"}],
        "{ __typename }",
        {"qeury": "{ __typename }"},
        {"query": 7},
        {"query": "{ __typename }", "variables": "{}"},
        {"query": "{ __typename }", "operationName": 1},
        {"query": "{ __typename }", "extensions": []},
    ],
    ids=["batch", "string", "no-query", "number-query", "string-vars", "int-name", "list-ext"],
)
@pytest.mark.parametrize("accept", [JSON, GRAPHQL_RESPONSE])
async def test_malformed_parameters_are_400_without_data(
    client: httpx.AsyncClient, body: object, accept: str
) -> None:
    response = await _post(client, body, accept)
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
    assert "data" not in response.json()


async def test_invalid_json_is_400(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/graphql", content=b'{"query": "{', headers={"content-type": JSON}
    )
    assert response.status_code == 400
    assert "data" not in response.json()


@pytest.mark.parametrize(
    "body",
    [b'{"query": "{ __typename }\xff"}', b'{"query": "{ __typename }", "\xc3": 1}'],
    ids=["in-value", "in-key"],
)
async def test_a_body_that_is_not_utf8_is_400(client: httpx.AsyncClient, body: bytes) -> None:
    response = await client.post("/graphql", content=body, headers={"content-type": JSON})
    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert error["extensions"] == {"code": "BAD_REQUEST"}
    assert "UTF-8" in error["message"]
    assert "data" not in response.json()


@pytest.mark.parametrize("accept", ["text/html", "application/xml", f"{JSON};q=0"])
async def test_an_unacceptable_accept_header_is_406(client: httpx.AsyncClient, accept: str) -> None:
    response = await _post(client, {"query": "{ __typename }"}, accept)
    assert response.status_code == 406


@pytest.mark.parametrize(
    "content_type",
    [
        "application/x-www-form-urlencoded",
        "text/plain",
        "multipart/form-data; boundary=x",
        None,
        f"{JSON}; charset=latin-1",
    ],
)
async def test_bodies_other_than_utf8_json_are_415(
    client: httpx.AsyncClient, services: Services, content_type: str | None
) -> None:
    headers = {"content-type": content_type} if content_type else {}
    response = await client.post("/graphql", content=f'{{"query": "{PING}"}}', headers=headers)
    assert response.status_code == 415
    assert await services.redis.zcard(QUEUE_NAME) == 0


@pytest.fixture
async def small_client(make_client: ClientFactory) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an app that accepts bodies of at most 1024 bytes."""
    async with make_client(max_body_bytes=1024) as http:
        yield http


async def test_a_body_over_the_limit_is_413(small_client: httpx.AsyncClient) -> None:
    padded = {"query": "{ __typename }" + " " * 1024}
    assert (await _post(small_client, padded)).status_code == 413
    assert (await _post(small_client, {"query": "{ __typename }"})).status_code == 200


async def test_a_streamed_body_over_the_limit_is_413(small_client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"query": "{ __typename }'
        for _ in range(10):
            yield b" " * 200
        yield b'"}'

    # Without Content-Length the limit must hold while the body is read.
    response = await small_client.post("/graphql", content=chunks(), headers={"content-type": JSON})
    assert response.status_code == 413


async def test_get_runs_a_query(client: httpx.AsyncClient) -> None:
    response = await client.get(
        "/graphql", params={"query": "{ __typename }"}, headers={"accept": JSON}
    )
    assert response.status_code == 200
    assert response.json()["data"] == {"__typename": "Query"}


async def test_get_never_runs_a_mutation(client: httpx.AsyncClient, services: Services) -> None:
    response = await client.get("/graphql", params={"query": PING}, headers={"accept": JSON})
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert "data" not in response.json()
    assert await services.redis.zcard(QUEUE_NAME) == 0


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "OPTIONS"])
async def test_other_methods_are_405_with_allow(client: httpx.AsyncClient, method: str) -> None:
    response = await client.request(method, "/graphql", json={"query": "{ __typename }"})
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"
    assert response.headers["content-type"] == f"{JSON}; charset=utf-8"
    [error] = response.json()["errors"]
    assert error["extensions"] == {"code": "BAD_REQUEST"}
    assert method in error["message"]
    assert "data" not in response.json()


async def test_a_browser_gets_graphiql(client: httpx.AsyncClient) -> None:
    response = await client.get("/graphql", headers={"accept": "text/html,*/*;q=0.8"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")


async def test_request_id_is_echoed_or_generated(client: httpx.AsyncClient) -> None:
    given = await client.post(
        "/graphql", json={"query": "{ __typename }"}, headers={"x-request-id": "abc-123"}
    )
    assert given.headers["x-request-id"] == "abc-123"
    unsafe = await client.post(
        "/graphql", json={"query": "{ __typename }"}, headers={"x-request-id": "a b\tc"}
    )
    assert unsafe.headers["x-request-id"] not in ("", "a b\tc")


@pytest.mark.parametrize(
    ("body", "operation"),
    [
        ({"query": "query Named { __typename }"}, "Named"),
        ({"query": "{ __typename }"}, None),
        ({"query": "query A { version } query B { __typename }", "operationName": "B"}, "B"),
        ({"query": "{ noSuchField }", "operationName": None}, None),
    ],
)
async def test_the_request_log_names_the_operation_that_ran(
    client: httpx.AsyncClient,
    caplog: pytest.LogCaptureFixture,
    body: dict[str, object],
    operation: str | None,
) -> None:
    caplog.set_level(logging.INFO, logger="taskyard.http")
    response = await client.post("/graphql", json=body)
    [record] = [r for r in caplog.records if r.name == "taskyard.http"]
    assert (record.operation, record.status, record.method) == (  # type: ignore[attr-defined]
        operation,
        response.status_code,
        "POST",
    )
    assert record.path == "/graphql"  # type: ignore[attr-defined]
    assert record.duration_ms >= 0  # type: ignore[attr-defined]


async def test_a_failure_around_execution_is_internal_with_the_request_id(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken_execute(self: TaskyardSchema, *args: object, **kwargs: object) -> None:
        raise RuntimeError("secret detail")

    monkeypatch.setattr(TaskyardSchema, "execute", broken_execute)
    response = await client.post(
        "/graphql", json={"query": "{ __typename }"}, headers={"x-request-id": "boom-1"}
    )
    assert response.status_code == 500
    assert response.json() == {
        "errors": [
            {
                "message": "Internal server error",
                "extensions": {"code": "INTERNAL", "requestId": "boom-1"},
            }
        ]
    }
    assert "secret detail" in caplog.text


async def test_get_queries_can_be_turned_off(make_client: ClientFactory) -> None:
    async with make_client(get_queries=False) as http:
        response = await http.get("/graphql", params={"query": "{ version }"})
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert "data" not in response.json()
