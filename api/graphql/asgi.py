"""Just enough raw ASGI to read a request and send a response without building framework objects."""

from collections.abc import Mapping

from litestar.types import HTTPResponseStartEvent, HTTPScope, Receive, Send


class BodyTooLarge(Exception):
    """The request body is longer than the limit the caller set."""


def header(scope: HTTPScope, name: bytes) -> str | None:
    """The first value of a request header; `name` is lowercase, as ASGI servers give them."""
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


async def read_body(scope: HTTPScope, receive: Receive, limit: int) -> bytes:
    """The whole request body; raise `BodyTooLarge` as soon as it exceeds `limit` bytes."""
    declared = header(scope, b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return bytes(body)
        body += message.get("body", b"")
        if len(body) > limit:
            raise BodyTooLarge
        if not message.get("more_body", False):
            return bytes(body)


async def respond(
    send: Send,
    status: int,
    body: bytes,
    content_type: str,
    headers: Mapping[str, str] | None = None,
) -> None:
    """Send a complete response in one body message."""
    raw = [
        (b"content-type", content_type.encode()),
        (b"content-length", str(len(body)).encode()),
    ]
    raw += [(name.lower().encode(), value.encode()) for name, value in (headers or {}).items()]
    start: HTTPResponseStartEvent = {
        "type": "http.response.start",
        "status": status,
        "headers": raw,
    }
    await send(start)
    await send({"type": "http.response.body", "body": body, "more_body": False})
