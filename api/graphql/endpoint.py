"""`/graphql` as one raw ASGI endpoint: GraphiQL, HTTP queries and mutations, and WebSocket."""

from litestar import WebSocket
from litestar.enums import ScopeType
from litestar.types import HTTPScope, Receive, Scope, Send

from api.graphql.asgi import header, respond
from api.graphql.http import GraphQLHTTP, has_query
from api.graphql.media import prefers_html
from api.graphql.ws import GraphQLWebSocket

ALLOWED_METHODS = "GET, POST"


class GraphQLEndpoint:
    """Routes a `/graphql` connection by its kind and method, with no framework in between."""

    def __init__(self, http: GraphQLHTTP, ws: GraphQLWebSocket, graphiql: str | None) -> None:
        self.http = http
        self.ws = ws
        self.graphiql = graphiql.encode() if graphiql is not None else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one HTTP request or WebSocket connection."""
        if scope["type"] == ScopeType.WEBSOCKET:
            await self.ws.serve(WebSocket(scope, receive, send))
        elif scope["method"] == "POST":
            await self.http.post(scope, receive, send)
        elif scope["method"] == "GET":
            await self.get(scope, receive, send)
        else:
            await self.http.refuse_method(scope, send, ALLOWED_METHODS)

    async def get(self, scope: HTTPScope, receive: Receive, send: Send) -> None:
        """GraphiQL for a browser that asks for a page, a GraphQL query otherwise."""
        if (
            self.graphiql is not None
            and not has_query(scope["query_string"])
            and prefers_html(header(scope, b"accept"))
        ):
            await respond(send, 200, self.graphiql, "text/html; charset=utf-8")
        else:
            await self.http.get(scope, receive, send)
