"""The worker's side of a run: claims, reports, retries, timeouts, ownership, hand-back."""

import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest

from domain.identity.models import RequestMeta, Role
from domain.runs.execution import Claim, Deferred, Finished, LostOwnership, RetryAt
from domain.runs.models import (
    AttemptOutcome,
    EventKind,
    LogLevel,
    Run,
    RunError,
    RunStatus,
)
from domain.runs.policy import RunPolicy
from domain.runs.rules import LOG_LIMIT_NOTICE, RESULT_TOO_LARGE
from tests.unit.run_fakes import World, make_task, make_viewer

BOOM = RunError("ValueError", "boom")
ADMIN = make_viewer(Role.ADMIN)


async def start(world: World, **defaults: Any) -> Run:
    """A queued run of a task with the given defaults."""
    await world.service.register_tasks([make_task(**defaults)])
    return await world.service.start_run(
        viewer=make_viewer(), meta=RequestMeta(), task="sum", params={"a": 1, "b": 2}
    )


async def claim_of(world: World, run: Run, worker: str = "w1") -> Claim:
    """The next attempt of the run on `worker`."""
    claim = await world.executor.claim(run.id, worker)
    assert isinstance(claim, Claim)
    return claim


async def test_a_claim_starts_the_next_attempt_and_records_it() -> None:
    world = World()
    run = await start(world)
    claim = await claim_of(world, run)
    stored = world.store.run(run.id)
    assert (claim.attempt, claim.worker_id, claim.run.last_seq) == (1, "w1", 2)
    assert (stored.status, stored.worker_id, stored.started_at) == (
        RunStatus.RUNNING,
        "w1",
        world.clock.now(),
    )
    [attempt] = world.store.attempts(run.id)
    assert (attempt.number, attempt.worker_id, attempt.outcome) == (1, "w1", None)
    event = world.store.events(run.id)[-1]
    assert (event.kind, event.status, event.attempt) == (EventKind.STATUS, RunStatus.RUNNING, 1)
    assert run.id in world.store.locks
    assert world.bus.uncommitted == []


async def test_nothing_is_claimed_twice_nor_after_the_end() -> None:
    world = World()
    run = await start(world)
    claim = await claim_of(world, run)
    assert await world.executor.claim(run.id, "w2") is None
    await world.executor.succeed(claim, 3)
    assert await world.executor.claim(run.id, "w2") is None
    assert await world.executor.claim(uuid.uuid4(), "w2") is None


async def test_progress_is_clamped_and_its_message_cut() -> None:
    world = World(RunPolicy(max_progress_message_chars=5))
    claim = await claim_of(world, await start(world))
    event = await world.executor.progress(claim, 1.7, "almost there")
    assert (event.kind, event.fraction, event.message) == (EventKind.PROGRESS, 1.0, "almo…")
    stored = world.store.run(claim.run.id)
    assert (stored.progress, stored.progress_message) == (1.0, "almo…")


async def test_the_log_keeps_its_cap_then_one_notice_then_nothing() -> None:
    world = World(RunPolicy(max_log_lines=3, max_log_line_chars=4))
    claim = await claim_of(world, await start(world))
    kept = [await world.executor.log(claim, LogLevel.INFO, f"line {i}") for i in range(6)]
    assert [e.message if e else None for e in kept] == ["lin…"] * 3 + [None] * 3
    logs = [e for e in world.store.events(claim.run.id) if e.kind is EventKind.LOG]
    assert [e.message for e in logs][-1] == LOG_LIMIT_NOTICE
    assert [e.level for e in logs] == [LogLevel.INFO] * 3 + [LogLevel.WARNING]


async def test_success_ends_run_and_attempt_with_the_result() -> None:
    world = World()
    claim = await claim_of(world, await start(world))
    event = await world.executor.succeed(claim, {"sum": 3})
    assert (event.kind, event.status, event.result) == (
        EventKind.RESULT,
        RunStatus.SUCCEEDED,
        {"sum": 3},
    )
    stored = world.store.run(claim.run.id)
    assert (stored.status, stored.result, stored.worker_id) == (
        RunStatus.SUCCEEDED,
        {"sum": 3},
        None,
    )
    assert world.store.attempts(claim.run.id)[0].outcome is AttemptOutcome.SUCCEEDED
    assert world.bus.updates[-1].status is RunStatus.SUCCEEDED


async def test_a_result_too_large_to_keep_fails_the_run_for_good() -> None:
    world = World(RunPolicy(max_result_bytes=8))
    claim = await claim_of(world, await start(world, max_attempts=3))
    event = await world.executor.succeed(claim, "x" * 100)
    assert event.status is RunStatus.FAILED
    assert event.error is not None
    assert event.error.type == RESULT_TOO_LARGE
    assert world.store.run(claim.run.id).result is None


async def test_failures_retry_with_backoff_until_attempts_run_out() -> None:
    world = World(rand=lambda: 1.0)
    run = await start(world, max_attempts=3, backoff_seconds=2)
    waits = []
    for _ in range(2):
        outcome = await world.executor.fail(await claim_of(world, run), BOOM)
        assert isinstance(outcome, RetryAt)
        waits.append(outcome.at - world.clock.now())
        stored = world.store.run(run.id)
        assert (stored.status, stored.not_before, stored.worker_id) == (
            RunStatus.QUEUED,
            outcome.at,
            None,
        )
        assert await world.executor.claim(run.id, "w1") == Deferred(outcome.at)
        world.clock.at = outcome.at
    assert waits == [timedelta(seconds=2), timedelta(seconds=4)]
    retry_event = world.store.events(run.id)[-1]
    assert (retry_event.status, retry_event.error, retry_event.message) == (
        RunStatus.QUEUED,
        BOOM,
        "retrying in 4s",
    )
    assert await world.executor.fail(await claim_of(world, run), BOOM) == Finished(RunStatus.FAILED)
    assert [a.outcome for a in world.store.attempts(run.id)] == [AttemptOutcome.FAILED] * 3
    assert world.store.events(run.id)[-1].kind is EventKind.RESULT
    assert world.store.run(run.id).error == BOOM


async def test_a_non_retriable_failure_ends_the_run_at_once() -> None:
    world = World()
    claim = await claim_of(world, await start(world, max_attempts=5))
    outcome = await world.executor.fail(claim, BOOM, retriable=False)
    assert outcome == Finished(RunStatus.FAILED)


async def test_a_last_attempt_that_timed_out_ends_timed_out() -> None:
    world = World()
    claim = await claim_of(world, await start(world, max_attempts=1))
    timeout = RunError("TimeoutError", "took longer than 300s")
    assert await world.executor.fail(claim, timeout, timed_out=True) == Finished(
        RunStatus.TIMED_OUT
    )
    assert world.store.attempts(claim.run.id)[0].outcome is AttemptOutcome.TIMED_OUT


async def test_a_failure_after_a_cancel_request_ends_cancelled_not_retried() -> None:
    world = World()
    run = await start(world, max_attempts=3)
    claim = await claim_of(world, run)
    await world.service.cancel_run(viewer=ADMIN, meta=RequestMeta(), run_id=run.id)
    assert await world.executor.fail(claim, BOOM) == Finished(RunStatus.CANCELLED)


async def test_a_stopped_task_ends_the_run_cancelled() -> None:
    world = World()
    claim = await claim_of(world, await start(world))
    event = await world.executor.cancelled(claim)
    assert (event.kind, event.status) == (EventKind.RESULT, RunStatus.CANCELLED)
    assert world.store.attempts(claim.run.id)[0].outcome is AttemptOutcome.CANCELLED


async def test_hand_back_queues_the_run_again_unharmed_after_committing() -> None:
    world = World()
    claim = await claim_of(world, await start(world))
    world.queue.calls.clear()
    await world.executor.hand_back(claim)
    stored = world.store.run(claim.run.id)
    assert (stored.status, stored.attempt, stored.worker_id) == (RunStatus.QUEUED, 1, None)
    assert world.store.events(claim.run.id)[-1].message == "handed back: worker shutting down"
    assert world.store.attempts(claim.run.id)[0].outcome is AttemptOutcome.INTERRUPTED
    [call] = world.queue.calls
    assert (call.action, call.committed_status) == ("requeue", RunStatus.QUEUED)
    assert (await claim_of(world, stored, "w2")).attempt == 2


async def test_a_handed_back_run_asked_to_cancel_ends_when_claimed() -> None:
    world = World()
    run = await start(world)
    claim = await claim_of(world, run)
    await world.service.cancel_run(viewer=ADMIN, meta=RequestMeta(), run_id=run.id)
    world.queue.down = True
    await world.executor.hand_back(claim)
    assert await world.executor.claim(run.id, "w2") is None
    assert world.store.run(run.id).status is RunStatus.CANCELLED
    assert world.store.events(run.id)[-1].kind is EventKind.RESULT


@pytest.mark.parametrize("step", ["progress", "log", "succeed", "fail", "cancelled", "hand_back"])
async def test_a_claim_that_lost_its_run_can_write_nothing(step: str) -> None:
    world = World()
    run = await start(world, max_attempts=3)
    stale = await claim_of(world, run)
    await world.executor.fail(stale, BOOM)
    world.clock.advance(3600)
    await claim_of(world, run, "w2")
    before = world.store.run(run.id).last_seq
    calls: dict[str, Callable[[], Awaitable[object]]] = {
        "progress": lambda: world.executor.progress(stale, 0.5, None),
        "log": lambda: world.executor.log(stale, LogLevel.INFO, "late"),
        "succeed": lambda: world.executor.succeed(stale, 1),
        "fail": lambda: world.executor.fail(stale, BOOM),
        "cancelled": lambda: world.executor.cancelled(stale),
        "hand_back": lambda: world.executor.hand_back(stale),
    }
    with pytest.raises(LostOwnership):
        await calls[step]()
    with pytest.raises(LostOwnership):
        await world.executor.is_cancel_requested(stale)
    assert world.store.run(run.id).last_seq == before
    assert world.store.run(run.id).worker_id == "w2"


async def test_a_bus_that_fails_never_fails_a_step_that_was_committed() -> None:
    world = World()
    claim = await claim_of(world, await start(world))
    world.bus.failure = ConnectionError("redis went away")
    await world.executor.log(claim, LogLevel.INFO, "still kept")
    await world.executor.succeed(claim, 3)
    assert world.store.run(claim.run.id).status is RunStatus.SUCCEEDED
    assert [e.kind for e in world.store.events(claim.run.id)][-2:] == [
        EventKind.LOG,
        EventKind.RESULT,
    ]
