"""GraphQL over HTTP, following the GraphQL-over-HTTP spec, on a lean path.

The handlers take only the request: no dependency injection, no thread hops. Parsing
and validation are cached by the schema's extensions.
"""

from collections.abc import Mapping
from typing import Any

import msgspec
from litestar import Request, Response
from strawberry.exceptions import MissingQueryError
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType

from api.context import Context
from api.errors import ErrorCode
from api.graphql.media import GRAPHQL_RESPONSE, JSON, is_json_body, negotiate
from api.schema import TaskyardSchema
from infra.bootstrap import Services
from infra.logging import request_id_var

GET_OPERATIONS = frozenset({OperationType.QUERY})
POST_OPERATIONS = frozenset({OperationType.QUERY, OperationType.MUTATION})
_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder()


class RequestError(Exception):
    """A request that cannot be executed, answered with `status` and one error."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: ErrorCode = ErrorCode.BAD_REQUEST,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.headers = dict(headers or {})


class GraphQLParams(msgspec.Struct, frozen=True):
    """The parameters of one GraphQL request."""

    query: str
    operation_name: str | None
    variables: dict[str, Any] | None
    extensions: dict[str, Any] | None


def _error_body(message: str, code: ErrorCode) -> dict[str, Any]:
    return {"errors": [{"message": message, "extensions": {"code": code.value}}]}


def _params(data: Any, *, media: str) -> GraphQLParams:
    """Check the request's parameters; a malformed one is a request error."""
    # With application/json the spec wants 200 for well-formed HTTP requests, with errors.
    status = 400 if media == GRAPHQL_RESPONSE else 200
    if isinstance(data, list):
        raise RequestError(400, "Batched operations are not supported; send one per request")
    if not isinstance(data, dict):
        raise RequestError(400, "The request body must be a JSON object")
    query, name = data.get("query"), data.get("operationName")
    variables, extensions = data.get("variables"), data.get("extensions")
    if not isinstance(query, str) or not query.strip():
        raise RequestError(status, "The request must carry a `query` string")
    if not isinstance(name, str | None):
        raise RequestError(status, "`operationName` must be a string or null")
    if not isinstance(variables, dict | None):
        raise RequestError(status, "`variables` must be an object or null")
    if not isinstance(extensions, dict | None):
        raise RequestError(status, "`extensions` must be an object or null")
    return GraphQLParams(query, name, variables, extensions)


def _decode_json(raw: str | bytes, what: str) -> Any:
    try:
        return _decoder.decode(raw)
    except msgspec.DecodeError as exc:
        raise RequestError(400, f"{what} is not valid JSON: {exc}") from None


def params_from_query_string(query: Mapping[str, str]) -> dict[str, Any]:
    """GET parameters as they would appear in a JSON body."""
    data: dict[str, Any] = {
        "query": query.get("query"),
        "operationName": query.get("operationName"),
    }
    for key in ("variables", "extensions"):
        if query.get(key):
            data[key] = _decode_json(query[key], f"`{key}`")
    return data


async def read_body(request: Request[Any, Any, Any], limit: int) -> bytes:
    """The request body, refusing one larger than `limit` bytes before reading it all."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise RequestError(413, f"The request body is larger than {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestError(413, f"The request body is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _is_request_error(result: ExecutionResult) -> bool:
    # Parse, validation and variable errors stop execution before any field runs.
    return (
        result.data is None
        and bool(result.errors)
        and all(e.path is None for e in result.errors or ())
    )


def _respond(
    body: dict[str, Any], status: int, media: str, headers: Mapping[str, str] | None = None
) -> Response[bytes]:
    return Response(
        _encoder.encode(body), status_code=status, media_type=media, headers=dict(headers or {})
    )


def _result_response(result: ExecutionResult, media: str) -> Response[bytes]:
    body: dict[str, Any] = {}
    status = 200
    if not _is_request_error(result):
        body["data"] = result.data
    elif media == GRAPHQL_RESPONSE:
        # Request errors carry no `data`; only the new media type signals them by status.
        status = 400
    if result.errors:
        body["errors"] = [error.formatted for error in result.errors]
    if result.extensions:
        body["extensions"] = result.extensions
    return _respond(body, status, media)


class GraphQLHTTP:
    """Executes GraphQL requests that arrive over HTTP."""

    def __init__(self, schema: TaskyardSchema, *, max_body_bytes: int) -> None:
        self.schema = schema
        self.max_body_bytes = max_body_bytes

    async def post(self, request: Request[Any, Any, Any], services: Services) -> Response[bytes]:
        """Run a query or mutation sent as a JSON body."""
        media = negotiate(request.headers.get("accept"))
        try:
            if media is None:
                raise RequestError(406, f"Accept {JSON} or {GRAPHQL_RESPONSE}")
            if not is_json_body(request.headers.get("content-type")):
                raise RequestError(415, f"Send the request as {JSON} (UTF-8)")
            raw = await read_body(request, self.max_body_bytes)
            params = _params(_decode_json(raw, "The request body"), media=media)
            return await self.execute(request, services, params, media, POST_OPERATIONS)
        except RequestError as exc:
            return _respond(
                _error_body(exc.message, exc.code), exc.status, media or JSON, exc.headers
            )

    async def get(self, request: Request[Any, Any, Any], services: Services) -> Response[bytes]:
        """Run a query sent in the query string; never a mutation."""
        media = negotiate(request.headers.get("accept"))
        try:
            if media is None:
                raise RequestError(406, f"Accept {JSON} or {GRAPHQL_RESPONSE}")
            data = params_from_query_string(request.query_params)
            params = _params(data, media=media)
            return await self.execute(request, services, params, media, GET_OPERATIONS)
        except RequestError as exc:
            return _respond(
                _error_body(exc.message, exc.code), exc.status, media or JSON, exc.headers
            )

    async def execute(
        self,
        request: Request[Any, Any, Any],
        services: Services,
        params: GraphQLParams,
        media: str,
        allowed: frozenset[OperationType],
    ) -> Response[bytes]:
        """Execute checked parameters and shape the response as the spec says."""
        request.scope["state"]["operation"] = params.operation_name
        context = Context(services=services, request_id=request_id_var.get())
        try:
            result = await self.schema.execute(
                params.query,
                variable_values=params.variables,
                context_value=context,
                operation_name=params.operation_name,
                allowed_operation_types=allowed,
                operation_extensions=params.extensions,
            )
        except InvalidOperationTypeError as exc:
            if exc.operation_type is OperationType.MUTATION:
                raise RequestError(
                    405, "Mutations are only accepted in POST requests", headers={"Allow": "POST"}
                ) from None
            raise RequestError(400, "Subscriptions are only served over WebSocket") from None
        except CannotGetOperationTypeError as exc:
            status = 400 if media == GRAPHQL_RESPONSE else 200
            raise RequestError(
                status, exc.as_http_error_reason(), code=ErrorCode.GRAPHQL_VALIDATION_FAILED
            ) from None
        except MissingQueryError:
            raise RequestError(400, "The request must carry a `query` string") from None
        return _result_response(result, media)
