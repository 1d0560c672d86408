"""The error contract as a client sees it over HTTP."""

import logging

import httpx
import pytest

import api.system.queries
from api.errors import INTERNAL_MESSAGE
from domain.system import MAX_PING_MESSAGE
from tests.conftest import ClientFactory
from tests.graphql_client import codes, gql

PING = """
mutation Ping($input: SystemPingInput) {
  systemPing(input: $input) { reply { message } userErrors { code message path } }
}
"""


async def test_a_syntax_error_is_parse_failed(client: httpx.AsyncClient) -> None:
    body = await gql(client, "{ health { status ")
    assert codes(body) == ["GRAPHQL_PARSE_FAILED"]
    assert "data" not in body


async def test_an_unknown_field_is_validation_failed(client: httpx.AsyncClient) -> None:
    body = await gql(client, "{ health { colour } }")
    assert codes(body) == ["GRAPHQL_VALIDATION_FAILED"]
    assert "data" not in body


async def test_a_variable_of_the_wrong_type_is_bad_user_input(client: httpx.AsyncClient) -> None:
    body = await gql(client, PING, input={"message": 42})
    assert codes(body) == ["BAD_USER_INPUT"]
    assert "data" not in body


async def test_an_input_rule_broken_is_a_user_error_on_its_field(
    client: httpx.AsyncClient, operator_token: str
) -> None:
    body = await gql(client, PING, operator_token, input={"message": "x" * (MAX_PING_MESSAGE + 1)})
    assert "errors" not in body
    payload = body["data"]["systemPing"]
    assert payload["reply"] is None
    [error] = payload["userErrors"]
    assert (error["code"], error["path"]) == ("BAD_USER_INPUT", ["input", "message"])
    assert str(MAX_PING_MESSAGE) in error["message"]


async def test_no_worker_to_answer_is_a_retriable_user_error_not_a_500(
    make_client: ClientFactory, auth: dict[str, str]
) -> None:
    async with make_client(ping_timeout=0.2) as client:
        response = await client.post(
            "/graphql",
            json={"query": PING, "variables": {"input": {"message": "anyone?"}}},
            headers=auth,
        )
    assert response.status_code == 200
    body = response.json()
    assert "errors" not in body
    [error] = body["data"]["systemPing"]["userErrors"]
    assert error["code"] == "UNAVAILABLE"
    assert "0.2s" in error["message"]


async def test_an_unexpected_exception_reaches_the_client_only_as_internal(
    client: httpx.AsyncClient,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken() -> str:
        raise RuntimeError("version file unreadable: /etc/secret-path")

    monkeypatch.setattr(api.system.queries, "taskyard_version", broken)
    with caplog.at_level(logging.ERROR):
        response = await client.post("/graphql", json={"query": "{ version }"})

    request_id = response.headers["x-request-id"]
    [error] = response.json()["errors"]
    assert error["message"] == INTERNAL_MESSAGE
    assert error["extensions"] == {"code": "INTERNAL", "requestId": request_id}
    for leak in ("Traceback", "RuntimeError", "secret-path", "broken"):
        assert leak not in response.text
    tracebacks = [
        logging.Formatter().formatException(r.exc_info) for r in caplog.records if r.exc_info
    ]
    assert any("Traceback" in t and "secret-path" in t for t in tracebacks), caplog.text
