"""Request IDs and one structured log line per request, as plain ASGI for a lean path."""

import logging
import os
import re
import time
from typing import Any

from litestar.types import ASGIApp, Message, Receive, Scope, Send

from infra.logging import request_id_var

logger = logging.getLogger("taskyard.http")
REQUEST_ID_HEADER = b"x-request-id"
# A client-supplied ID is echoed into logs and headers, so it must be short and plain.
_VALID_ID = re.compile(rb"^[A-Za-z0-9._:-]{1,128}$")


def _request_id(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == REQUEST_ID_HEADER and _VALID_ID.match(value):
            return value.decode()
    # 128 random bits, like a UUID4, without building a UUID object on every request.
    return os.urandom(16).hex()


def request_log_middleware(app: ASGIApp) -> ASGIApp:
    """Accept or make an `X-Request-ID`, return it, and log the request when it ends."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await app(scope, receive, send)
            return
        request_id = _request_id(scope)
        id_header = (REQUEST_ID_HEADER, request_id.encode())
        token = request_id_var.set(request_id)
        state: dict[str, Any] = scope.setdefault("state", {})
        started = time.perf_counter()
        status = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), id_header]
            elif message["type"] == "websocket.accept":
                status = 101
                message["headers"] = [*message.get("headers", ()), id_header]
            elif message["type"] == "websocket.close" and not status:
                # Closed before the handshake was accepted: the server answers 403.
                status = 403
            await send(message)

        try:
            await app(scope, receive, send_with_id)
        finally:
            logger.info(
                "%s %s %s",
                scope.get("method", "WS"),
                scope["path"],
                status,
                extra={
                    "method": scope.get("method", "WEBSOCKET"),
                    "path": scope["path"],
                    "operation": state.get("operation"),
                    "status": status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                },
            )
            request_id_var.reset(token)

    return middleware
