"""GraphQL transport: the HTTP and WebSocket endpoints and the execution helpers."""
