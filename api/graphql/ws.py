"""GraphQL over WebSocket, `graphql-transport-ws` only, on Strawberry's protocol handler."""

import asyncio
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, NoReturn, TypeGuard

from litestar import Request, Response, WebSocket
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http.async_base_view import AsyncBaseHTTPView
from strawberry.litestar.controller import LitestarWebSocketAdapter
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types.unset import UNSET, UnsetType

from api.admission import admit_socket, watch_credential
from api.context import Context
from api.schema import TaskyardSchema
from domain.errors import Unauthenticated, Unavailable
from domain.identity.models import RequestMeta
from infra.bootstrap import Services
from infra.logging import request_id_var

WS_POLICY_VIOLATION = 1008
WS_FORBIDDEN = 4403
WATCH_KEY = "taskyard.credential_watch"


class GraphQLWebSocket(
    AsyncBaseHTTPView[
        Request[Any, Any, Any],
        Response[Any],
        Response[Any],
        WebSocket[Any, Any, Any],
        WebSocket[Any, Any, Any],
        Context,
        None,
    ]
):
    """Serves subscriptions; HTTP requests are handled by `GraphQLHTTP`, never here."""

    protocols = (GRAPHQL_TRANSPORT_WS_PROTOCOL,)
    websocket_adapter_class = LitestarWebSocketAdapter  # type: ignore[assignment]
    graphql_ide = None
    allow_queries_via_get = False

    def __init__(
        self,
        schema: TaskyardSchema,
        services: Services,
        *,
        init_timeout: float = 10.0,
        max_subscriptions: int = 100,
        allowed_origins: frozenset[str] = frozenset(),
    ) -> None:
        self.schema = schema
        self.services = services
        self.connection_init_wait_timeout = timedelta(seconds=init_timeout)
        self.max_subscriptions_per_connection = max_subscriptions
        # Pages from the same origin may always connect; these other origins may too.
        self.allowed_origins = allowed_origins

    async def serve(self, socket: WebSocket[Any, Any, Any]) -> None:
        """Serve one connection, and stop watching its credential when it ends."""
        try:
            await self.run(socket)
        finally:
            watch = socket.scope.get("state", {}).pop(WATCH_KEY, None)
            if watch is not None:
                watch.cancel()

    async def get_context(
        self, request: Request[Any, Any, Any] | WebSocket[Any, Any, Any], response: Any
    ) -> Context:
        """A context for the whole connection; its viewer is set at `connection_init`."""
        assert isinstance(request, WebSocket)
        client = request.scope.get("client")
        meta = RequestMeta(
            ip=client[0] if client else None,
            user_agent=request.headers.get("user-agent"),
            request_id=request_id_var.get(),
        )
        return Context(
            services=self.services, request_id=meta.request_id, meta=meta, socket=request
        )

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:
        """Sign the connection in from `connection_init`, or refuse it (4403).

        The credential is then re-checked every few seconds, so revoking a session or
        token closes its subscriptions too.
        """
        try:
            viewer, token = await admit_socket(
                self.services, params=context.connection_params, meta=context.meta
            )
        except (Unauthenticated, Unavailable):
            raise ConnectionRejectionError from None
        context.viewer = viewer
        socket = context.socket
        assert socket is not None

        async def close() -> None:
            await socket.close(code=WS_FORBIDDEN, reason="Credentials revoked")

        socket.scope.setdefault("state", {})[WATCH_KEY] = asyncio.create_task(
            watch_credential(self.services, token, close)
        )
        # UNSET sends a plain `connection_ack`, with no payload.
        unset: UnsetType = UNSET
        return unset

    async def get_root_value(self, request: Any) -> None:
        """No root value."""
        return

    def is_websocket_request(self, request: Any) -> TypeGuard[WebSocket[Any, Any, Any]]:
        """Every request this view sees is a WebSocket."""
        return isinstance(request, WebSocket)

    async def pick_websocket_subprotocol(self, request: WebSocket[Any, Any, Any]) -> str | None:
        """The one protocol we speak, when the client offers it."""
        offered = request.scope.get("subprotocols", [])
        return GRAPHQL_TRANSPORT_WS_PROTOCOL if GRAPHQL_TRANSPORT_WS_PROTOCOL in offered else None

    async def create_websocket_response(
        self, request: WebSocket[Any, Any, Any], subprotocol: str | None
    ) -> WebSocket[Any, Any, Any]:
        """Accept the handshake with the chosen protocol."""
        await request.accept(subprotocols=subprotocol)
        return request

    def get_websocket_headers(self, request: WebSocket[Any, Any, Any]) -> Mapping[str, str]:
        """The handshake's headers."""
        return request.headers

    async def reject_websocket(self, request: WebSocket[Any, Any, Any]) -> WebSocket[Any, Any, Any]:
        """Close before accepting, which the server answers with 403."""
        await request.close(code=WS_POLICY_VIOLATION)
        return request

    async def get_sub_response(self, request: Any) -> NoReturn:
        """Not used: this view serves no HTTP."""
        raise NotImplementedError

    def create_response(self, response_data: Any, sub_response: Any) -> NoReturn:
        """Not used: this view serves no HTTP."""
        raise NotImplementedError

    async def render_graphql_ide(self, request: Any) -> NoReturn:
        """Not used: this view serves no HTTP."""
        raise NotImplementedError
