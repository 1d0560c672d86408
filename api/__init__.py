"""The GraphQL API over HTTP and WebSocket, served by Litestar."""
