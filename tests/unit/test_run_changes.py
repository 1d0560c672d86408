"""Starting, cancelling and retrying runs: commits before Redis, audits, rights, idempotency."""

import uuid
from typing import Any

import pytest

from domain.audit import Outcome
from domain.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from domain.identity.models import RequestMeta, Role, Viewer
from domain.runs.execution import Claim
from domain.runs.models import EventKind, Priority, Run, RunError, RunStatus
from domain.runs.policy import RunPolicy
from tests.unit.run_fakes import World, make_task, make_viewer

META = RequestMeta(ip="10.0.0.1", user_agent="tests", request_id="req-1")
PARAMS = {"a": 1, "b": 2}


async def started(world: World, viewer: Viewer | None = None, **options: Any) -> Run:
    """A run of `sum` started by `viewer` (a fresh operator by default)."""
    if not world.store.state.tasks:
        await world.service.register_tasks([make_task(max_attempts=1)])
    options.setdefault("params", PARAMS)
    return await world.service.start_run(
        viewer=viewer or make_viewer(), meta=META, task="sum", **options
    )


async def running(world: World, viewer: Viewer) -> Claim:
    """A run of `viewer`'s claimed by worker w1."""
    run = await started(world, viewer)
    claim = await world.executor.claim(run.id, "w1")
    assert isinstance(claim, Claim)
    return claim


async def test_start_commits_the_run_and_its_first_event_before_queueing() -> None:
    world, viewer = World(), make_viewer()
    run = await started(world, viewer)
    assert (run.status, run.last_seq, run.created_by) == (RunStatus.QUEUED, 1, viewer.user.id)
    [first] = world.store.events(run.id)
    assert (first.seq, first.kind, first.status, first.attempt) == (
        1,
        EventKind.STATUS,
        RunStatus.QUEUED,
        0,
    )
    [call] = world.queue.calls
    assert (call.action, call.run_id, call.at) == ("enqueue", run.id, world.clock.now())
    assert call.committed_status is RunStatus.QUEUED
    assert world.bus.published == [first]
    assert world.bus.uncommitted == []
    assert [u.status for u in world.bus.updates] == [RunStatus.QUEUED]


async def test_start_is_audited_with_its_target() -> None:
    world = World()
    run = await started(world)
    [entry] = world.store.state.audit
    assert (entry.action, entry.target_type, entry.target_id) == ("run.start", "Run", str(run.id))
    assert (entry.outcome, entry.ip, entry.request_id) == (Outcome.ALLOWED, "10.0.0.1", "req-1")


async def test_a_refused_start_is_audited_and_writes_no_run() -> None:
    world = World()
    with pytest.raises(PermissionDenied):
        await started(world, make_viewer(Role.VIEWER))
    assert world.store.state.runs == {}
    assert world.queue.calls == []
    [entry] = world.store.state.audit
    assert entry.outcome is Outcome.REFUSED


async def test_unknown_and_absurd_task_names_are_invalid_input_on_task() -> None:
    world = World()
    for name in ("missing", "x" * 10_000):
        with pytest.raises(InvalidInput) as caught:
            await world.service.start_run(viewer=make_viewer(), meta=META, task=name, params={})
        assert caught.value.path == ["task"]


async def test_a_queue_that_is_down_does_not_fail_the_start() -> None:
    world = World()
    world.queue.down = True
    run = await started(world)
    assert world.store.run(run.id).status is RunStatus.QUEUED
    assert world.bus.published != []


async def test_a_bus_that_fails_does_not_fail_the_start() -> None:
    world = World()
    world.bus.failure = ConnectionError("redis went away")
    run = await started(world)
    assert world.queue.jobs == {run.id: world.clock.now()}


async def test_runs_take_the_tasks_defaults_within_the_policys_bounds() -> None:
    world = World(RunPolicy(max_attempts=5, max_timeout_seconds=60, max_backoff_seconds=9))
    task = make_task(
        max_attempts=50, timeout_seconds=600, backoff_seconds=30, priority=Priority.LOW
    )
    await world.service.register_tasks([task])
    run = await started(world)
    assert (run.max_attempts, run.timeout_seconds, run.backoff_seconds) == (5, 60, 9)
    assert run.priority is Priority.LOW
    assert (await started(world, priority=Priority.HIGH)).priority is Priority.HIGH


async def test_one_key_within_the_window_gives_the_first_run_without_queueing_again() -> None:
    world, viewer = World(), make_viewer()
    first = await started(world, viewer, idempotency_key="order-7")
    again = await started(world, viewer, idempotency_key="order-7")
    assert again.id == first.id
    assert len(world.store.state.runs) == 1
    assert world.queue.actions("enqueue") == [first.id]
    other_user = await started(world, make_viewer(), idempotency_key="order-7")
    assert other_user.id != first.id


async def test_a_key_is_free_again_after_the_window() -> None:
    world, viewer = World(), make_viewer()
    first = await started(world, viewer, idempotency_key="k")
    world.clock.advance(RunPolicy().idempotency_window.total_seconds() + 1)
    assert (await started(world, viewer, idempotency_key="k")).id != first.id


async def test_cancelling_a_queued_run_ends_it_at_once() -> None:
    world, viewer = World(), make_viewer()
    run = await started(world, viewer)
    cancelled = await world.service.cancel_run(viewer=viewer, meta=META, run_id=run.id)
    assert cancelled.status is RunStatus.CANCELLED
    assert world.store.run(run.id).finished_at == world.clock.now()
    last = world.store.events(run.id)[-1]
    assert (last.kind, last.status, last.seq) == (EventKind.RESULT, RunStatus.CANCELLED, 2)
    assert world.queue.actions("abort") == []
    assert world.bus.updates[-1].status is RunStatus.CANCELLED


async def test_cancelling_a_running_run_asks_its_worker_once_recorded() -> None:
    world, viewer = World(), make_viewer()
    claim = await running(world, viewer)
    run = await world.service.cancel_run(viewer=viewer, meta=META, run_id=claim.run.id)
    assert run.status is RunStatus.RUNNING
    assert run.cancel_requested_at == world.clock.now()
    last = world.store.events(run.id)[-1]
    assert (last.kind, last.status, last.message) == (
        EventKind.STATUS,
        RunStatus.RUNNING,
        "cancel requested",
    )
    [abort] = [call for call in world.queue.calls if call.action == "abort"]
    assert world.store.run(run.id).cancel_requested_at is not None
    assert abort.run_id == run.id
    assert await world.executor.is_cancel_requested(claim)


async def test_asking_twice_adds_no_event_and_a_down_queue_is_tolerated() -> None:
    world, viewer = World(), make_viewer()
    claim = await running(world, viewer)
    await world.service.cancel_run(viewer=viewer, meta=META, run_id=claim.run.id)
    seq = world.store.run(claim.run.id).last_seq
    world.queue.down = True
    await world.service.cancel_run(viewer=viewer, meta=META, run_id=claim.run.id)
    assert world.store.run(claim.run.id).last_seq == seq


async def test_an_ended_run_cannot_be_cancelled() -> None:
    world, viewer = World(), make_viewer()
    claim = await running(world, viewer)
    await world.executor.succeed(claim, 3)
    with pytest.raises(Conflict, match="already ended"):
        await world.service.cancel_run(viewer=viewer, meta=META, run_id=claim.run.id)
    assert world.store.state.audit[-1].outcome is Outcome.REFUSED


async def test_others_cannot_cancel_or_retry_a_run_nor_learn_it_exists() -> None:
    world = World()
    run = await started(world)
    stranger = make_viewer()
    for change in (world.service.cancel_run, world.service.retry_run):
        with pytest.raises(NotFound):
            await change(viewer=stranger, meta=META, run_id=run.id)
        with pytest.raises(NotFound):
            await change(viewer=stranger, meta=META, run_id=uuid.uuid4())
    admin = make_viewer(Role.ADMIN)
    cancelled = await world.service.cancel_run(viewer=admin, meta=META, run_id=run.id)
    assert cancelled.status is RunStatus.CANCELLED


async def test_retry_makes_a_linked_run_through_the_start_path() -> None:
    world, viewer = World(), make_viewer()
    claim = await running(world, viewer)
    await world.executor.fail(claim, RunError("ValueError", "bad"))
    retry = await world.service.retry_run(viewer=viewer, meta=META, run_id=claim.run.id)
    assert (retry.retry_of, retry.task_name, retry.params) == (claim.run.id, "sum", PARAMS)
    assert (retry.status, retry.last_seq) == (RunStatus.QUEUED, 1)
    assert world.queue.actions("enqueue")[-1] == retry.id
    entry = world.store.state.audit[-1]
    assert (entry.action, entry.target_id) == ("run.retry", str(claim.run.id))


async def test_only_ended_runs_can_be_retried() -> None:
    world, viewer = World(), make_viewer()
    run = await started(world, viewer)
    with pytest.raises(Conflict):
        await world.service.retry_run(viewer=viewer, meta=META, run_id=run.id)
    assert len(world.store.state.runs) == 1
