"""Recovery decisions: the reaper ends lost attempts, the reconciler re-queues lost jobs."""

from datetime import timedelta

import pytest

from domain.identity.models import RequestMeta, Role
from domain.runs.execution import Claim, LostOwnership
from domain.runs.models import WORKER_LOST, AttemptOutcome, EventKind, Run, RunError, RunStatus
from domain.runs.policy import RunPolicy
from domain.runs.recovery import LOST_WORKER_ERROR
from tests.unit.run_fakes import World, make_task, make_viewer

STALE = RunPolicy().worker_stale_after.total_seconds()


async def running(
    world: World, worker: str = "w1", max_attempts: int = 3, backoff_seconds: float = 2
) -> Claim:
    """A run claimed by `worker`, whose heartbeat is fresh now."""
    task = make_task(max_attempts=max_attempts, backoff_seconds=backoff_seconds)
    await world.service.register_tasks([task])
    run = await world.service.start_run(
        viewer=make_viewer(), meta=RequestMeta(), task="sum", params={"a": 1, "b": 2}
    )
    claim = await world.executor.claim(run.id, worker)
    assert isinstance(claim, Claim)
    world.store.state.heartbeats[worker] = world.clock.now()
    return claim


async def test_runs_of_workers_with_fresh_heartbeats_are_left_alone() -> None:
    world = World()
    claim = await running(world)
    world.clock.advance(STALE - 1)
    assert await world.recovery.reap_lost_runs() == 0
    assert world.store.run(claim.run.id).status is RunStatus.RUNNING


async def test_an_attempt_far_past_its_timeout_is_lost_though_its_worker_lives() -> None:
    world = World()
    claim = await running(world)
    overdue = claim.run.timeout_seconds + RunPolicy().overdue_grace.total_seconds()
    reaped = []
    for step in (overdue - 1, 2):
        world.clock.advance(step)
        # The worker keeps beating: only the attempt's age can make it lost.
        world.store.state.heartbeats["w1"] = world.clock.now()
        reaped.append(await world.recovery.reap_lost_runs())
    assert reaped == [0, 1]
    [attempt] = world.store.attempts(claim.run.id)
    assert attempt.outcome is AttemptOutcome.WORKER_LOST
    assert world.store.run(claim.run.id).status is RunStatus.QUEUED


async def test_a_lost_attempt_is_retried_after_backoff_and_requeued_once_committed() -> None:
    world = World(rand=lambda: 1.0)
    claim = await running(world)
    world.clock.advance(STALE + 1)
    world.queue.calls.clear()
    assert await world.recovery.reap_lost_runs() == 1
    run = world.store.run(claim.run.id)
    assert (run.status, run.worker_id) == (RunStatus.QUEUED, None)
    assert run.not_before == world.clock.now() + timedelta(seconds=2)
    [attempt] = world.store.attempts(run.id)
    assert (attempt.outcome, attempt.error) == (AttemptOutcome.WORKER_LOST, LOST_WORKER_ERROR)
    event = world.store.events(run.id)[-1]
    assert (event.kind, event.status, event.error) == (
        EventKind.STATUS,
        RunStatus.QUEUED,
        LOST_WORKER_ERROR,
    )
    [call] = world.queue.calls
    assert (call.action, call.at, call.committed_status) == (
        "requeue",
        run.not_before,
        RunStatus.QUEUED,
    )
    assert world.bus.uncommitted == []
    assert claim.run.id in world.store.locks


async def test_a_worker_that_never_beat_counts_as_lost() -> None:
    world = World()
    claim = await running(world)
    del world.store.state.heartbeats["w1"]
    assert await world.recovery.reap_lost_runs() == 1
    assert world.store.run(claim.run.id).status is RunStatus.QUEUED


async def test_a_lost_last_attempt_fails_the_run_as_worker_lost() -> None:
    world = World()
    claim = await running(world, max_attempts=1)
    world.clock.advance(STALE + 1)
    await world.recovery.reap_lost_runs()
    run = world.store.run(claim.run.id)
    assert run.status is RunStatus.FAILED
    assert run.error is not None
    assert run.error.type == WORKER_LOST
    result = world.store.events(run.id)[-1]
    assert (result.kind, result.status) == (EventKind.RESULT, RunStatus.FAILED)
    assert world.queue.actions("requeue") == []


async def test_a_lost_run_asked_to_cancel_ends_cancelled() -> None:
    world = World()
    claim = await running(world)
    admin = make_viewer(Role.ADMIN)
    await world.service.cancel_run(viewer=admin, meta=RequestMeta(), run_id=claim.run.id)
    world.clock.advance(STALE + 1)
    await world.recovery.reap_lost_runs()
    assert world.store.run(claim.run.id).status is RunStatus.CANCELLED
    assert world.queue.actions("requeue") == []


async def test_the_lost_worker_cannot_write_after_being_reaped() -> None:
    world = World()
    claim = await running(world)
    world.clock.advance(STALE + 1)
    await world.recovery.reap_lost_runs()
    with pytest.raises(LostOwnership):
        await world.executor.succeed(claim, 3)
    assert world.store.run(claim.run.id).status is RunStatus.QUEUED


async def test_a_queue_that_is_down_leaves_reaped_runs_to_the_reconciler() -> None:
    world = World()
    claim = await running(world)
    world.clock.advance(STALE + 1)
    world.queue.down = True
    assert await world.recovery.reap_lost_runs() == 1
    world.queue.down = False
    world.queue.jobs.clear()
    world.clock.advance(3600)
    assert await world.recovery.enqueue_missing() == 1
    assert claim.run.id in world.queue.jobs


async def test_the_reaper_handles_at_most_its_limit() -> None:
    world = World()
    for worker in ("w1", "w2", "w3"):
        await running(world, worker)
    world.clock.advance(STALE + 1)
    assert await world.recovery.reap_lost_runs(limit=2) == 2
    assert await world.recovery.reap_lost_runs(limit=2) == 1


async def test_due_queued_runs_the_queue_lost_are_queued_again() -> None:
    world = World()
    await world.service.register_tasks([make_task()])
    viewer = make_viewer()
    runs: list[Run] = [
        await world.service.start_run(viewer=viewer, meta=RequestMeta(), task="sum", params=p)
        for p in ({"a": 1, "b": 1}, {"a": 2, "b": 2})
    ]
    assert await world.recovery.enqueue_missing() == 0
    del world.queue.jobs[runs[0].id]
    world.clock.advance(1)
    assert await world.recovery.enqueue_missing() == 1
    # Queued for when it was first due, so it keeps its place ahead of later runs.
    assert world.queue.jobs[runs[0].id] == runs[0].created_at < world.clock.now()


async def test_a_retrying_run_is_queued_again_for_its_own_time() -> None:
    world = World(rand=lambda: 1.0)
    claim = await running(world)
    await world.executor.fail(claim, RunError("ValueError", "boom"))
    not_before = world.store.run(claim.run.id).not_before
    assert not_before is not None
    world.queue.jobs.clear()
    # Within the margin the run is due soon enough to queue now, for its own time.
    assert await world.recovery.enqueue_missing() == 1
    assert world.queue.jobs[claim.run.id] == not_before


async def test_runs_due_later_wait_for_a_later_round() -> None:
    world = World(rand=lambda: 1.0)
    claim = await running(world, backoff_seconds=600)
    await world.executor.fail(claim, RunError("ValueError", "boom"))
    world.queue.jobs.clear()
    assert await world.recovery.enqueue_missing() == 0
    world.clock.advance(600)
    assert await world.recovery.enqueue_missing() == 1
