"""GraphQL over HTTP, as the GraphQL-over-HTTP spec says, on a lean raw-ASGI path.

No framework request or response objects, no dependency injection and no thread hops:
a request is read, executed by the schema (whose extensions cache parsing and validation)
and answered with one msgspec-encoded body.
"""

import logging
from collections.abc import Awaitable, Callable, Mapping
from math import ceil
from typing import Any
from urllib.parse import parse_qsl

import msgspec
from litestar.types import HTTPScope, Receive, Send
from strawberry.exceptions import MissingQueryError
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType

from api.admission import Admitted, BudgetSpent, admit, rate_headers
from api.errors import INTERNAL_MESSAGE, ErrorCode
from api.graphql.asgi import BodyTooLarge, header, read_body, respond
from api.graphql.media import GRAPHQL_RESPONSE, JSON, is_json_body, negotiate
from api.graphql.operation import operation_label
from api.schema import TaskyardSchema
from domain.errors import Unauthenticated, Unavailable
from domain.identity.models import RequestMeta
from infra.bootstrap import Services
from infra.logging import request_id_var

logger = logging.getLogger("taskyard.api")
GET_OPERATIONS = frozenset({OperationType.QUERY})
POST_OPERATIONS = frozenset({OperationType.QUERY, OperationType.MUTATION})
_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder()


class RequestError(Exception):
    """A request that cannot be executed, answered with `status` and one error, never `data`."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: ErrorCode = ErrorCode.BAD_REQUEST,
        headers: Mapping[str, str] | None = None,
        extensions: Mapping[str, object] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.headers = headers
        self.extensions = extensions


class GraphQLParams(msgspec.Struct, frozen=True):
    """The parameters of one GraphQL request."""

    query: str
    operation_name: str | None
    variables: dict[str, Any] | None
    extensions: dict[str, Any] | None


def parse_params(data: Any) -> GraphQLParams:
    """Check a request's parameters; any malformed one makes the request not well-formed (400)."""
    if isinstance(data, list):
        raise RequestError(400, "Batched operations are not supported; send one per request")
    if not isinstance(data, dict):
        raise RequestError(400, "The request body must be a JSON object")
    query, name = data.get("query"), data.get("operationName")
    variables, extensions = data.get("variables"), data.get("extensions")
    if not isinstance(query, str) or not query.strip():
        raise RequestError(400, "The request must carry a `query` string")
    if not isinstance(name, str | None):
        raise RequestError(400, "`operationName` must be a string or null")
    if not isinstance(variables, dict | None):
        raise RequestError(400, "`variables` must be an object or null")
    if not isinstance(extensions, dict | None):
        raise RequestError(400, "`extensions` must be an object or null")
    return GraphQLParams(query, name, variables, extensions)


def _decode_json(raw: str | bytes, what: str) -> Any:
    try:
        return _decoder.decode(raw)
    except msgspec.DecodeError as exc:
        raise RequestError(400, f"{what} is not valid JSON: {exc}") from None
    except UnicodeDecodeError as exc:
        # msgspec checks the encoding of strings only as it meets them, with its own error.
        raise RequestError(400, f"{what} is not valid UTF-8: {exc.reason}") from None


def params_from_query_string(query_string: bytes) -> dict[str, Any]:
    """GET parameters as they would appear in a JSON body."""
    query = dict(parse_qsl(query_string.decode("latin-1"), keep_blank_values=True))
    data: dict[str, Any] = {
        "query": query.get("query"),
        "operationName": query.get("operationName"),
    }
    for key in ("variables", "extensions"):
        if query.get(key):
            data[key] = _decode_json(query[key], f"`{key}`")
    return data


def has_query(query_string: bytes) -> bool:
    """Whether a query string carries a `query` parameter."""
    return any(
        key == "query"
        for key, _ in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)
    )


def _is_request_error(result: ExecutionResult) -> bool:
    # Parse, validation and variable errors stop execution before any field runs.
    return (
        result.data is None
        and bool(result.errors)
        and all(e.path is None for e in result.errors or ())
    )


def _result_body(result: ExecutionResult, media: str) -> tuple[int, dict[str, Any]]:
    body: dict[str, Any] = {}
    status = 200
    if not _is_request_error(result):
        body["data"] = result.data
    elif media == GRAPHQL_RESPONSE:
        # Only the newer media type signals request errors by status; JSON keeps 200.
        status = 400
    if result.errors:
        body["errors"] = [error.formatted for error in result.errors]
    if result.extensions:
        body["extensions"] = result.extensions
    return status, body


def _content_type(media: str) -> str:
    return f"{media}; charset=utf-8"


class GraphQLHTTP:
    """Executes GraphQL requests that arrive over HTTP, as raw ASGI."""

    def __init__(
        self,
        schema: TaskyardSchema,
        services: Services,
        *,
        max_body_bytes: int,
        get_queries: bool = True,
    ) -> None:
        self.schema = schema
        self.services = services
        self.max_body_bytes = max_body_bytes
        self.get_queries = get_queries

    async def post(self, scope: HTTPScope, receive: Receive, send: Send) -> None:
        """Run a query or mutation sent as a JSON body."""

        async def params() -> GraphQLParams:
            if not is_json_body(header(scope, b"content-type")):
                raise RequestError(415, f"Send the request as {JSON} (UTF-8)")
            try:
                raw = await read_body(scope, receive, self.max_body_bytes)
            except BodyTooLarge:
                raise RequestError(
                    413, f"The request body is larger than {self.max_body_bytes} bytes"
                ) from None
            return parse_params(_decode_json(raw, "The request body"))

        await self._serve(scope, send, params, POST_OPERATIONS)

    async def get(self, scope: HTTPScope, receive: Receive, send: Send) -> None:
        """Run a query sent in the query string; never a mutation."""

        async def params() -> GraphQLParams:
            if not self.get_queries:
                raise RequestError(
                    405, "Queries over GET are turned off; use POST", headers={"Allow": "POST"}
                )
            return parse_params(params_from_query_string(scope["query_string"]))

        await self._serve(scope, send, params, GET_OPERATIONS)

    async def refuse_method(self, scope: HTTPScope, send: Send, allow: str) -> None:
        """Answer a method other than `allow` (a comma-separated list) with 405."""
        message = f"The {scope['method']} method is not allowed; use {allow}"
        error = RequestError(405, message, headers={"Allow": allow})
        await self._refuse(send, error, negotiate(header(scope, b"accept")), {})

    async def _serve(
        self,
        scope: HTTPScope,
        send: Send,
        params: Callable[[], Awaitable[GraphQLParams]],
        allowed: frozenset[OperationType],
    ) -> None:
        media = negotiate(header(scope, b"accept"))
        budget_headers: dict[str, str] = {}
        try:
            if media is None:
                raise RequestError(406, f"Accept {JSON} or {GRAPHQL_RESPONSE}")
            admitted = await self.admit(scope)
            budget_headers = rate_headers(admitted.budget)
            status, body = await self.execute(scope, await params(), media, allowed, admitted)
        except RequestError as exc:
            await self._refuse(send, exc, media, budget_headers)
            return
        except Exception:
            # Resolver errors are handled by the schema; this is a failure around it.
            logger.exception("unexpected error serving a GraphQL request")
            error = RequestError(500, INTERNAL_MESSAGE, code=ErrorCode.INTERNAL)
            await self._refuse(send, error, media, budget_headers)
            return
        body_bytes = _encoder.encode(body)
        await respond(send, status, body_bytes, _content_type(media), budget_headers)

    async def _refuse(
        self, send: Send, error: RequestError, media: str | None, headers: Mapping[str, str]
    ) -> None:
        extensions: dict[str, object] = {"code": error.code.value, **(error.extensions or {})}
        if error.code is ErrorCode.INTERNAL:
            extensions["requestId"] = request_id_var.get() or ""
        body = {"errors": [{"message": error.message, "extensions": extensions}]}
        content_type = _content_type(media or JSON)
        all_headers = {**headers, **(error.headers or {})}
        await respond(send, error.status, _encoder.encode(body), content_type, all_headers)

    async def admit(self, scope: HTTPScope) -> Admitted:
        """Authenticate the caller and spend from their budget; refusals end the request."""
        client = scope.get("client")
        meta = RequestMeta(
            ip=client[0] if client else None,
            user_agent=header(scope, b"user-agent"),
            request_id=request_id_var.get(),
        )
        try:
            return await admit(
                self.services, authorization=header(scope, b"authorization"), meta=meta
            )
        except BudgetSpent as exc:
            raise RequestError(
                429,
                exc.message,
                code=ErrorCode.RATE_LIMITED,
                headers={**rate_headers(exc.budget), "Retry-After": str(ceil(exc.retry_after))},
                extensions={"retryAfter": exc.retry_after},
            ) from None
        except Unauthenticated as exc:
            raise RequestError(
                401,
                exc.message,
                code=ErrorCode.UNAUTHENTICATED,
                headers={"WWW-Authenticate": 'Bearer realm="taskyard"'},
            ) from None
        except Unavailable as exc:
            raise RequestError(
                503,
                exc.message,
                code=ErrorCode.UNAVAILABLE,
                headers={"Retry-After": "1"},
                extensions={"retriable": True},
            ) from None

    async def execute(
        self,
        scope: HTTPScope,
        params: GraphQLParams,
        media: str,
        allowed: frozenset[OperationType],
        admitted: Admitted,
    ) -> tuple[int, dict[str, Any]]:
        """Execute checked parameters; the status and body the spec asks for."""
        try:
            result = await self.schema.execute(
                params.query,
                variable_values=params.variables,
                context_value=admitted.context,
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
            raise RequestError(
                400 if media == GRAPHQL_RESPONSE else 200,
                exc.as_http_error_reason(),
                code=ErrorCode.GRAPHQL_VALIDATION_FAILED,
            ) from None
        except MissingQueryError:
            raise RequestError(400, "The request must carry a `query` string") from None
        status, body = _result_body(result, media)
        # Only a document that ran is known to be valid, so only then is it worth reading.
        executed = "data" in body
        scope.setdefault("state", {})["operation"] = (
            operation_label(params.query, params.operation_name)
            if executed
            else params.operation_name
        )
        return status, body
