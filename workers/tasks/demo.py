"""Demonstration tasks: counting with progress, and failing on purpose."""

import asyncio
from typing import Annotated, Any

import msgspec

from domain.runs.models import LogLevel
from workers.tasks.context import TaskContext
from workers.tasks.errors import TaskFailure
from workers.tasks.spec import task


class CountParams(msgspec.Struct, rename="camel", forbid_unknown_fields=True, kw_only=True):
    """How far to count and how long each step takes."""

    to: Annotated[int, msgspec.Meta(ge=1, le=100_000, description="The number to count to.")]
    delay_ms: Annotated[
        int, msgspec.Meta(ge=0, le=60_000, description="Milliseconds each step takes.")
    ] = 100


class FailParams(msgspec.Struct, rename="camel", forbid_unknown_fields=True, kw_only=True):
    """What to fail with, and when."""

    message: Annotated[
        str, msgspec.Meta(max_length=1000, description="The error message to fail with.")
    ] = "failed on purpose"
    delay_ms: Annotated[
        int, msgspec.Meta(ge=0, le=60_000, description="Milliseconds to wait before failing.")
    ] = 0


class DemoFailure(TaskFailure):
    """The failure `demo.fail` raises."""


@task("demo.count", params=CountParams)
async def count(ctx: TaskContext[CountParams]) -> dict[str, Any]:
    """Count from 1 to `to`, one progress event and one log line per step."""
    to, done = ctx.params.to, 0
    try:
        for step in range(1, to + 1):
            # Stops the count even if the worker's abort signal got lost on the way.
            await ctx.check_cancelled()
            await asyncio.sleep(ctx.params.delay_ms / 1000)
            await ctx.progress(step / to, f"{step}/{to}")
            await ctx.log(f"counted {step} of {to}")
            done = step
    except asyncio.CancelledError:
        # Whatever a task holds is released when it is stopped; this line shows it ran.
        await ctx.log(f"stopped after {done} of {to}; cleaned up", level=LogLevel.WARNING)
        raise
    return {"count": to}


@task("demo.fail", params=FailParams)
async def fail(ctx: TaskContext[FailParams]) -> None:
    """Fail with `message` after `delayMs`, to try out retries and error reporting."""
    await asyncio.sleep(ctx.params.delay_ms / 1000)
    raise DemoFailure(ctx.params.message)
