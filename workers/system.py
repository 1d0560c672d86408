"""System jobs."""

from typing import Any

from workers.context import JobContext, worker_name


async def system_ping(ctx: JobContext, payload: dict[str, Any]) -> dict[str, str]:
    """Echo a ping's message with the worker's name, proving the queue round trip."""
    return {"message": str(payload.get("message", "")), "worker": worker_name()}
