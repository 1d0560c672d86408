"""`http.request`: one HTTP request, retried on server errors and lost connections."""

from typing import Annotated, Any, Literal

import httpx
import msgspec

from domain.runs.models import TaskDefaults
from workers.tasks.context import TaskContext
from workers.tasks.errors import PermanentFailure, TaskFailure
from workers.tasks.spec import task

MAX_BODY_BYTES = 64 * 1024
IDEMPOTENCY_HEADER = "Idempotency-Key"


class RequestParams(msgspec.Struct, rename="camel", forbid_unknown_fields=True, kw_only=True):
    """The request to send."""

    url: Annotated[
        str,
        msgspec.Meta(
            pattern=r"^https?://[^\s/?#]+",
            max_length=2048,
            description="An http or https URL.",
        ),
    ]
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"] = "GET"
    headers: Annotated[dict[str, str], msgspec.Meta(description="Request headers.")] = {}
    body: Annotated[str | None, msgspec.Meta(description="The request body, as text.")] = None
    timeout_seconds: Annotated[
        float, msgspec.Meta(ge=0.1, le=120, description="Seconds to wait for each step.")
    ] = 30.0


class ServerError(TaskFailure):
    """The server answered 5xx; it may answer better later."""


class RequestFailed(TaskFailure):
    """The request got no answer: no connection, a timeout, a broken stream."""


class BadRequest(PermanentFailure):
    """The request cannot be sent at all, however often it is tried."""


@task(
    "http.request",
    params=RequestParams,
    defaults=TaskDefaults(max_attempts=5, timeout_seconds=300.0),
)
async def request(ctx: TaskContext[RequestParams]) -> dict[str, Any]:
    """Send an HTTP request with the run's idempotency key; a 4xx answer is a result too."""
    params = ctx.params
    # The caller's own key wins; otherwise every attempt sends the run's.
    headers = {IDEMPOTENCY_HEADER: ctx.idempotency_key} | params.headers
    answer, body, truncated = await _send(params, headers)
    if answer.status_code >= 500:
        raise ServerError(f"{params.method} {params.url} answered {answer.status_code}")
    return {
        "status": answer.status_code,
        "headers": dict(answer.headers.items()),
        "body": body.decode(answer.encoding or "utf-8", errors="replace"),
        "truncated": truncated,
    }


async def _send(
    params: RequestParams, headers: dict[str, str]
) -> tuple[httpx.Response, bytes, bool]:
    """The answer, with at most `MAX_BODY_BYTES` of its body and whether there was more."""
    try:
        async with httpx.AsyncClient(timeout=params.timeout_seconds) as client:
            request = client.build_request(
                params.method, params.url, headers=headers, content=params.body
            )
            answer = await client.send(request, stream=True)
            try:
                return answer, *await _read_capped(answer, MAX_BODY_BYTES)
            finally:
                await answer.aclose()
    except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
        raise BadRequest(f"{params.method} {params.url}: {exc}") from exc
    except httpx.TransportError as exc:
        raise RequestFailed(f"{params.method} {params.url}: {type(exc).__name__}: {exc}") from exc


async def _read_capped(answer: httpx.Response, limit: int) -> tuple[bytes, bool]:
    """At most `limit` bytes of the body, and whether there was more."""
    body = bytearray()
    async for chunk in answer.aiter_bytes():
        body += chunk
        if len(body) > limit:
            return bytes(body[:limit]), True
    return bytes(body), False
