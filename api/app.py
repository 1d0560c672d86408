"""The Litestar application factory: the API's composition root."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar, asgi
from litestar.datastructures import State
from litestar.types import Receive, Scope, Send

from api.graphiql import graphiql_page, graphiql_routes
from api.graphql.endpoint import GraphQLEndpoint
from api.graphql.http import GraphQLHTTP
from api.graphql.ws import GraphQLWebSocket
from api.health import healthz, readyz
from api.middleware import request_log_middleware
from api.schema import build_schema
from infra.bootstrap import Services
from infra.settings import Settings


def create_app(settings: Settings, services: Services) -> Litestar:
    """Build the API over `services`, which it closes at shutdown."""
    schema = build_schema(settings)
    endpoint = GraphQLEndpoint(
        GraphQLHTTP(
            schema,
            services,
            max_body_bytes=settings.max_body_bytes,
            get_queries=settings.get_queries_enabled,
        ),
        GraphQLWebSocket(
            schema,
            services,
            init_timeout=settings.ws_init_timeout,
            max_subscriptions=settings.ws_max_subscriptions,
            allowed_origins=settings.allowed_origins,
        ),
        graphiql_page() if settings.graphiql_enabled else None,
    )

    # Raw ASGI: the hottest path skips request parsing, dependency injection and response
    # building; the endpoint itself serves every method and the WebSocket on this path.
    @asgi("/graphql", is_mount=False, copy_scope=False)
    async def graphql(scope: Scope, receive: Receive, send: Send) -> None:
        await endpoint(scope, receive, send)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await services.close()

    routes = [graphql, healthz, readyz]
    return Litestar(
        route_handlers=routes + (graphiql_routes() if settings.graphiql_enabled else []),
        middleware=[request_log_middleware],
        lifespan=[lifespan],
        state=State({"services": services}),
        openapi_config=None,
        logging_config=None,
        debug=False,
    )
