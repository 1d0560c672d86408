"""The Litestar application factory: the API's composition root."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar, Request, Response, WebSocket, get, post, websocket
from litestar.datastructures import State

from api.graphiql import graphiql_page, graphiql_routes
from api.graphql.http import GraphQLHTTP
from api.graphql.media import prefers_html
from api.graphql.ws import GraphQLWebSocket
from api.health import healthz, readyz
from api.middleware import request_log_middleware
from api.schema import build_schema
from infra.bootstrap import Services
from infra.settings import Settings


def create_app(settings: Settings, services: Services) -> Litestar:
    """Build the API over `services`, which it closes at shutdown."""
    schema = build_schema(settings)
    http = GraphQLHTTP(schema, max_body_bytes=settings.max_body_bytes)
    ws = GraphQLWebSocket(schema, services)
    graphiql = graphiql_page() if settings.graphiql_enabled else None

    @post("/graphql", status_code=200, include_in_schema=False)
    async def graphql_post(request: Request[Any, Any, Any]) -> Response[bytes]:
        return await http.post(request, services)

    @get("/graphql", include_in_schema=False)
    async def graphql_get(request: Request[Any, Any, Any]) -> Response[Any]:
        if (
            graphiql
            and "query" not in request.query_params
            and prefers_html(request.headers.get("accept"))
        ):
            return Response(graphiql, media_type="text/html")
        return await http.get(request, services)

    @websocket("/graphql")
    async def graphql_ws(socket: WebSocket[Any, Any, Any]) -> None:
        await ws.run(socket)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await services.close()

    routes = [graphql_post, graphql_get, graphql_ws, healthz, readyz]
    return Litestar(
        route_handlers=routes + (graphiql_routes() if graphiql else []),
        middleware=[request_log_middleware],
        lifespan=[lifespan],
        state=State({"services": services}),
        openapi_config=None,
        logging_config=None,
        debug=False,
    )
