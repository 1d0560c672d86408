"""The task context: typed parameters, identity, reporting and throttled cancel checks."""

import asyncio
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.runs.execution import Claim
from domain.runs.models import EventKind, LogLevel, Priority, Run, RunEvent, RunStatus
from workers.tasks.context import CANCEL_POLL_SECONDS, TaskContext
from workers.tasks.errors import RunCancelled

NOW = datetime(2025, 1, 1, tzinfo=UTC)


def make_claim(task: str, params: dict[str, Any], *, attempt: int = 1) -> Claim:
    """A claim of a RUNNING run of `task`, as the executor hands it out."""
    run = Run(
        id=uuid.uuid4(),
        task_name=task,
        params=params,
        status=RunStatus.RUNNING,
        priority=Priority.NORMAL,
        created_by=None,
        created_at=NOW,
        max_attempts=3,
        timeout_seconds=60.0,
        backoff_seconds=1.0,
        attempt=attempt,
        worker_id="worker-1",
    )
    return Claim(run=run, worker_id="worker-1")


@dataclass
class RecordingReporter:
    """Keeps what a task reports, in order; says cancelled once `cancel` is set."""

    progress_calls: list[tuple[float, str | None]] = field(default_factory=list)
    lines: list[tuple[LogLevel, str]] = field(default_factory=list)
    cancel: bool = False
    cancel_polls: int = 0
    progressed: asyncio.Event = field(default_factory=asyncio.Event)

    async def progress(self, claim: Claim, fraction: float, message: str | None) -> RunEvent:
        self.progress_calls.append((fraction, message))
        self.progressed.set()
        seq = len(self.progress_calls)
        return RunEvent(claim.run.id, seq, NOW, EventKind.PROGRESS, fraction=fraction)

    async def log(self, claim: Claim, level: LogLevel, message: str) -> RunEvent | None:
        self.lines.append((level, message))
        return None

    async def is_cancel_requested(self, claim: Claim) -> bool:
        self.cancel_polls += 1
        return self.cancel


class Params(msgspec.Struct):
    size: int


class ManualClock:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def context(
    reporter: RecordingReporter, claim: Claim | None = None, clock: ManualClock | None = None
) -> TaskContext[Params]:
    return TaskContext(
        claim=claim or make_claim("demo.count", {"size": 3}),
        params=Params(size=3),
        reporter=reporter,
        clock=clock or ManualClock(),
    )


async def test_identity_comes_from_the_claimed_run() -> None:
    claim = make_claim("demo.count", {"size": 3}, attempt=2)
    ctx = context(RecordingReporter(), claim)
    assert ctx.run_id == claim.run.id
    assert ctx.attempt == 2
    assert ctx.params == Params(size=3)
    # The key is the run's, so it is the same on every attempt of it.
    assert ctx.idempotency_key == str(claim.run.id)


async def test_progress_and_log_reach_the_reporter_in_order() -> None:
    reporter = RecordingReporter()
    ctx = context(reporter)
    await ctx.progress(0.5, "half")
    await ctx.log("hello")
    await ctx.log("careful", level=LogLevel.WARNING)
    await ctx.progress(1.0)
    assert reporter.progress_calls == [(0.5, "half"), (1.0, None)]
    assert reporter.lines == [(LogLevel.INFO, "hello"), (LogLevel.WARNING, "careful")]


async def test_check_cancelled_raises_a_cancelled_error_once_asked_to_stop() -> None:
    reporter = RecordingReporter()
    clock = ManualClock()
    ctx = context(reporter, clock=clock)
    await ctx.check_cancelled()
    assert reporter.cancel_polls == 1
    reporter.cancel = True
    clock.now += CANCEL_POLL_SECONDS
    with pytest.raises(RunCancelled):
        await ctx.check_cancelled()
    assert ctx.cancelled
    # A task that swallowed the first stop is stopped again, without asking the store.
    polls = reporter.cancel_polls
    with pytest.raises(RunCancelled):
        await ctx.check_cancelled()
    assert reporter.cancel_polls == polls


@given(st.lists(st.floats(min_value=0.0, max_value=2.0), max_size=40))
async def test_the_store_is_asked_at_most_every_poll_interval(steps: list[float]) -> None:
    reporter = RecordingReporter()
    clock = ManualClock()
    ctx = context(reporter, clock=clock)
    expected, last = 0, None
    for step in steps:
        clock.now += step
        if last is None or clock.now - last >= CANCEL_POLL_SECONDS:
            expected, last = expected + 1, clock.now
        await ctx.check_cancelled()
    assert reporter.cancel_polls == expected
