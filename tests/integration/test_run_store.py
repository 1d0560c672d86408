"""The run repositories against real PostgreSQL: round trips, paging, windows and locking."""

import asyncio
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from domain.errors import InvalidInput, NotFound
from domain.identity.models import Role, User
from domain.paging import PageRequest
from domain.runs.models import (
    AttemptOutcome,
    EventKind,
    LogLevel,
    Priority,
    Run,
    RunAttempt,
    RunError,
    RunEvent,
    RunFilter,
    RunOrder,
    RunStatus,
    Task,
    TaskDefaults,
)
from domain.workers import WorkerBeat
from infra.bootstrap import Services

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def new_run(**fields: Any) -> Run:
    """A queued run with plain defaults; `fields` replace any of them."""
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "task_name": "demo.sleep",
        "params": {"seconds": 1},
        "status": RunStatus.QUEUED,
        "priority": Priority.NORMAL,
        "created_by": None,
        "created_at": T0,
        "max_attempts": 3,
        "timeout_seconds": 30.0,
        "backoff_seconds": 2.0,
    }
    return Run(**(values | fields))


def new_event(run_id: uuid.UUID, kind: EventKind = EventKind.LOG, **fields: Any) -> RunEvent:
    """An event of `kind`; its seq is left to the store."""
    return RunEvent(run_id=run_id, seq=0, at=T0, kind=kind, **fields)


async def add_user(services: Services) -> uuid.UUID:
    """A user row to own runs, without the cost of hashing a password."""
    user = User(
        id=uuid.uuid4(),
        email=f"u-{uuid.uuid4().hex[:8]}@example.com",
        display_name="U",
        role=Role.OPERATOR,
        plan="free",
        password_hash="-",
        is_active=True,
        created_at=T0,
    )
    async with services.uow() as uow:
        await uow.users.add(user)
        await uow.commit()
    return user.id


async def add_runs(services: Services, *runs: Run) -> None:
    """Commit `runs`."""
    async with services.uow() as uow:
        for run in runs:
            await uow.runs.add(run)
        await uow.commit()


async def append(services: Services, *events: RunEvent) -> list[RunEvent]:
    """Commit `events`, each under its run's next number."""
    async with services.uow() as uow:
        stored = [await uow.run_events.append(event.run_id, event) for event in events]
        await uow.commit()
    return stored


# -- tasks ------------------------------------------------------------------------------------


async def test_tasks_upsert_replaces_by_name_and_read_back_whole(services: Services) -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
    first = Task("b.task", "first", schema, TaskDefaults(), T0)
    other = Task("a.task", "other", {}, TaskDefaults(10.0, 1, 0.5, Priority.LOW), T0)
    async with services.uow() as uow:
        await uow.tasks.upsert([first, other])
        await uow.commit()
    changed = replace(first, description="second", defaults=TaskDefaults(priority=Priority.HIGH))
    async with services.uow() as uow:
        await uow.tasks.upsert([changed])
        await uow.commit()
    async with services.uow() as uow:
        assert await uow.tasks.all() == [other, changed]
        assert await uow.tasks.get_many(["b.task", "missing", "a.task"]) == [changed, None, other]


# -- runs -------------------------------------------------------------------------------------


async def test_a_run_with_every_field_set_round_trips(services: Services) -> None:
    user_id = await add_user(services)
    parent = new_run()
    run = new_run(
        params={"nested": [1, {"x": None}], "text": "é"},
        status=RunStatus.FAILED,
        priority=Priority.HIGH,
        created_by=user_id,
        idempotency_key="key-1",
        retry_of=parent.id,
        attempt=2,
        not_before=T0 + timedelta(seconds=1),
        started_at=T0 + timedelta(seconds=2),
        finished_at=T0 + timedelta(seconds=3),
        cancel_requested_at=T0 + timedelta(seconds=4),
        progress=0.5,
        progress_message="half",
        result=[1, "two", {"three": 3.5}],
        error=RunError("ValueError", "bad", "Traceback ..."),
        worker_id="worker-1",
    )
    await add_runs(services, parent, run)
    async with services.uow() as uow:
        assert await uow.runs.get(run.id) == run
        assert await uow.runs.get(uuid.uuid4()) is None


async def test_save_writes_every_field_but_last_seq(services: Services) -> None:
    run = new_run()
    await add_runs(services, run)
    await append(services, new_event(run.id, EventKind.STATUS, status=RunStatus.QUEUED))
    changed = replace(
        run,
        status=RunStatus.SUCCEEDED,
        result={"ok": True},
        error=RunError("E", "m"),
        progress=1.0,
        last_seq=99,
    )
    async with services.uow() as uow:
        await uow.runs.save(changed)
        await uow.commit()
    async with services.uow() as uow:
        assert await uow.runs.get(run.id) == replace(changed, last_seq=1)


async def test_get_for_update_in_the_same_unit_sees_the_latest_write(services: Services) -> None:
    run = new_run()
    await add_runs(services, run)
    async with services.uow() as uow:
        await uow.runs.get(run.id)
        await uow.runs.save(replace(run, status=RunStatus.RUNNING))
        locked = await uow.runs.get(run.id, for_update=True)
        assert locked is not None
        assert locked.status is RunStatus.RUNNING


async def test_get_many_keeps_the_order_of_ids(services: Services) -> None:
    a, b = new_run(), new_run()
    await add_runs(services, a, b)
    async with services.uow() as uow:
        assert await uow.runs.get_many([b.id, uuid.uuid4(), a.id]) == [b, None, a]


async def test_attempts_round_trip_grouped_in_order(services: Services) -> None:
    a, b, c = new_run(), new_run(), new_run()
    await add_runs(services, a, b, c)
    first = RunAttempt(a.id, 1, "w1", T0)
    second = RunAttempt(a.id, 2, "w2", T0 + timedelta(seconds=5))
    other = RunAttempt(b.id, 1, "w1", T0)
    async with services.uow() as uow:
        for attempt in (second, other, first):
            await uow.runs.add_attempt(attempt)
        await uow.commit()
    ended = replace(
        first,
        finished_at=T0 + timedelta(seconds=1),
        outcome=AttemptOutcome.WORKER_LOST,
        error=RunError("WORKER_LOST", "gone"),
    )
    async with services.uow() as uow:
        await uow.runs.save_attempt(ended)
        await uow.commit()
    async with services.uow() as uow:
        assert await uow.runs.attempts_of([c.id, a.id, b.id]) == [[], [ended, second], [other]]


async def test_a_deleted_creator_leaves_the_run_without_one(services: Services) -> None:
    user_id = await add_user(services)
    run = new_run(created_by=user_id)
    await add_runs(services, run)
    async with services.engine.begin() as connection:
        await connection.execute(text("DELETE FROM users WHERE id = :id"), {"id": user_id})
    async with services.uow() as uow:
        assert await uow.runs.get(run.id) == replace(run, created_by=None)


# -- idempotency --------------------------------------------------------------------------------


async def test_find_by_idempotency_key_gives_the_newest_within_the_window(
    services: Services,
) -> None:
    user_id = await add_user(services)
    old = new_run(created_by=user_id, idempotency_key="k", created_at=T0)
    newer = new_run(created_by=user_id, idempotency_key="k", created_at=T0 + timedelta(hours=1))
    anonymous = new_run(idempotency_key="k", created_at=T0)
    await add_runs(services, old, newer, anonymous, new_run(created_by=user_id))
    async with services.uow() as uow:
        runs = uow.runs
        assert await runs.find_by_idempotency_key(user_id, "k", since=T0) == newer
        assert await runs.find_by_idempotency_key(None, "k", since=T0) == anonymous
        later = T0 + timedelta(hours=2)
        assert await runs.find_by_idempotency_key(user_id, "k", since=later) is None
        assert await runs.find_by_idempotency_key(user_id, "other", since=T0) is None


async def _hold_key(services: Services, key: str, log: list[str], name: str) -> None:
    async with services.uow() as uow:
        await uow.runs.lock_idempotency_key(None, key)
        log.append(f"{name} locked")
        await asyncio.sleep(0.3)
        log.append(f"{name} done")
        await uow.commit()


async def test_the_idempotency_lock_serializes_one_key_and_not_others(
    services: Services,
) -> None:
    log: list[str] = []
    first = asyncio.create_task(_hold_key(services, "same", log, "a"))
    await asyncio.sleep(0.1)
    await asyncio.gather(
        _hold_key(services, "same", log, "b"), _hold_key(services, "different", log, "c"), first
    )
    # c took its own key at once, while a held "same"; b waited for a to finish.
    assert log.index("c locked") < log.index("a done")
    assert log.index("a done") < log.index("b locked")


# -- events -----------------------------------------------------------------------------------


async def test_events_of_every_kind_round_trip_with_their_numbers(services: Services) -> None:
    run = new_run()
    await add_runs(services, run)
    events = [
        new_event(run.id, EventKind.STATUS, status=RunStatus.QUEUED, attempt=0, message="new"),
        new_event(run.id, EventKind.STATUS, status=RunStatus.QUEUED, attempt=1,
                  error=RunError("E", "retrying", "tb")),
        new_event(run.id, EventKind.PROGRESS, fraction=0.25, message="a quarter"),
        new_event(run.id, EventKind.LOG, level=LogLevel.WARNING, message="careful"),
        new_event(run.id, EventKind.RESULT, status=RunStatus.SUCCEEDED, result={"n": [1, 2]}),
    ]  # fmt: skip
    stored = await append(services, *events)
    expected = [replace(event, seq=n) for n, event in enumerate(events, start=1)]
    assert stored == expected
    async with services.uow() as uow:
        assert await uow.run_events.after(run.id, 0, limit=100) == expected
        assert await uow.run_events.after(run.id, 1, limit=2) == expected[1:3]
        assert await uow.run_events.after(run.id, 1, limit=100, until_seq=3) == expected[1:3]
        assert await uow.run_events.count(run.id, EventKind.STATUS) == 2
        assert (await uow.runs.get(run.id) or new_run()).last_seq == 5


async def test_appending_to_an_unknown_run_is_not_found(services: Services) -> None:
    with pytest.raises(NotFound):
        await append(services, new_event(uuid.uuid4()))


async def _append_one(services: Services, run_id: uuid.UUID, n: int) -> None:
    async with services.uow() as uow:
        await uow.run_events.append(run_id, new_event(run_id, message=str(n)))
        await asyncio.sleep(0)
        await uow.commit()


async def test_concurrent_appends_number_events_without_gaps_or_duplicates(
    services: Services,
) -> None:
    run = new_run()
    await add_runs(services, run)
    await asyncio.gather(*(_append_one(services, run.id, n) for n in range(60)))
    async with services.uow() as uow:
        stored = await uow.run_events.after(run.id, 0, limit=1000)
        assert [event.seq for event in stored] == list(range(1, 61))
        assert sorted(int(event.message or "") for event in stored) == list(range(60))
        assert (await uow.runs.get(run.id) or new_run()).last_seq == 60


async def test_a_rolled_back_append_gives_its_number_back(services: Services) -> None:
    run = new_run()
    await add_runs(services, run)
    async with services.uow() as uow:
        await uow.run_events.append(run.id, new_event(run.id))
    stored = await append(services, new_event(run.id))
    assert [event.seq for event in stored] == [1]


async def test_latest_gives_each_runs_newest_events_of_a_kind_oldest_first(
    services: Services,
) -> None:
    a, b, quiet = new_run(), new_run(), new_run()
    await add_runs(services, a, b, quiet)
    await append(
        services,
        *(new_event(a.id, message=f"a{n}") for n in range(5)),
        new_event(a.id, EventKind.PROGRESS, fraction=0.5),
        new_event(b.id, message="b0"),
    )
    async with services.uow() as uow:
        latest = await uow.run_events.latest([quiet.id, a.id, b.id], EventKind.LOG, limit=3)
    assert [[event.message for event in events] for events in latest] == [
        [],
        ["a2", "a3", "a4"],
        ["b0"],
    ]


async def test_event_pages_filter_kinds_and_walk_both_ways(services: Services) -> None:
    run = new_run()
    await add_runs(services, run)
    kinds = [EventKind.LOG, EventKind.PROGRESS] * 5
    await append(
        services, *(new_event(run.id, kind, message=str(n)) for n, kind in enumerate(kinds))
    )
    logs = frozenset({EventKind.LOG})
    async with services.uow() as uow:
        events = uow.run_events
        first = await events.page(run.id, logs, PageRequest(first=2))
        assert [e.seq for e in first.items] == [1, 3]
        assert (first.keys, first.has_next, first.has_previous) == (["1", "3"], True, False)
        assert first.total_count == 5
        last = await events.page(run.id, logs, PageRequest(last=2))
        assert [e.seq for e in last.items] == [7, 9]
        assert (last.has_next, last.has_previous) == (False, True)
        middle = await events.page(run.id, logs, PageRequest(last=2, before="7"))
        assert [e.seq for e in middle.items] == [3, 5]
        assert (middle.has_next, middle.has_previous) == (True, True)
        every = await events.page(run.id, frozenset(EventKind), PageRequest(first=3, after="8"))
        assert [e.seq for e in every.items] == [9, 10]
        assert (every.has_next, every.has_previous) == (False, True)


@pytest.mark.parametrize("key", ["x", "-1", "1.5", ""])
@pytest.mark.parametrize("field", ["after", "before"])
async def test_an_unparsable_event_key_names_its_argument(
    services: Services, key: str, field: str
) -> None:
    request = (
        PageRequest(first=1, after=key) if field == "after" else PageRequest(last=1, before=key)
    )
    async with services.uow() as uow:
        with pytest.raises(InvalidInput) as caught:
            await uow.run_events.page(uuid.uuid4(), frozenset(EventKind), request)
    assert caught.value.path == [field]


# -- run lists ----------------------------------------------------------------------------------


async def test_for_creators_gives_each_users_newest_runs_in_one_query(services: Services) -> None:
    busy, idle, other = [await add_user(services) for _ in range(3)]
    busy_runs = [new_run(created_by=busy, created_at=T0 + timedelta(minutes=n)) for n in range(4)]
    other_run = new_run(created_by=other)
    await add_runs(services, *busy_runs, other_run, new_run(created_by=None))
    async with services.uow() as uow:
        newest = await uow.runs.for_creators([idle, busy, other], limit=2)
    assert newest == [[], [busy_runs[3], busy_runs[2]], [other_run]]


async def test_queued_due_skips_runs_still_backing_off_and_runs_not_queued(
    services: Services,
) -> None:
    now = T0 + timedelta(hours=1)
    fresh = new_run()
    backed_off = new_run(not_before=now - timedelta(seconds=1))
    waiting = new_run(not_before=now + timedelta(seconds=1))
    running = new_run(status=RunStatus.RUNNING)
    await add_runs(services, fresh, backed_off, waiting, running)
    async with services.uow() as uow:
        due = await uow.runs.queued_due(before=now, limit=10)
        assert {run.id for run in due} == {fresh.id, backed_off.id}
        assert len(await uow.runs.queued_due(before=now, limit=1)) == 1


async def test_lost_worker_runs_are_those_of_silent_or_unknown_workers(services: Services) -> None:
    now = T0 + timedelta(hours=1)
    for worker_id, seen in (("alive", now), ("silent", now - timedelta(minutes=5))):
        await services.workers.beat(WorkerBeat(worker_id, "host", 1, "v", T0, seen))
    on_alive = new_run(status=RunStatus.RUNNING, worker_id="alive")
    on_silent = new_run(status=RunStatus.RUNNING, worker_id="silent")
    on_unknown = new_run(status=RunStatus.RUNNING, worker_id="gone")
    finished = new_run(status=RunStatus.FAILED, worker_id="gone")
    await add_runs(services, on_alive, on_silent, on_unknown, finished)
    async with services.uow() as uow:
        lost = await uow.runs.running_on_lost_workers(
            seen_before=now - timedelta(minutes=1), overdue_at=T0, limit=10
        )
    assert {run.id for run in lost} == {on_silent.id, on_unknown.id}


async def test_an_attempt_far_past_its_timeout_is_lost_on_a_live_worker(
    services: Services,
) -> None:
    now = T0 + timedelta(hours=1)
    await services.workers.beat(WorkerBeat("alive", "host", 1, "v", T0, now))
    overdue, within = (
        new_run(status=RunStatus.RUNNING, worker_id="alive", attempt=1, timeout_seconds=60)
        for _ in range(2)
    )
    await add_runs(services, overdue, within)
    async with services.uow() as uow:
        for run, started in ((overdue, now - timedelta(minutes=10)), (within, now)):
            await uow.runs.add_attempt(RunAttempt(run.id, 1, "alive", started))
        await uow.commit()
    async with services.uow() as uow:
        lost = await uow.runs.running_on_lost_workers(
            seen_before=now - timedelta(minutes=1), overdue_at=now - timedelta(minutes=6), limit=10
        )
    assert [run.id for run in lost] == [overdue.id]


async def test_lost_worker_runs_skip_rows_another_reaper_holds(services: Services) -> None:
    held, free = (new_run(status=RunStatus.RUNNING, worker_id="gone") for _ in range(2))
    await add_runs(services, held, free)
    async with services.uow() as first:
        await first.runs.get(held.id, for_update=True)
        async with services.uow() as second:
            found = await asyncio.wait_for(
                second.runs.running_on_lost_workers(seen_before=T0, overdue_at=T0, limit=10),
                timeout=5,
            )
            assert [run.id for run in found] == [free.id]
            # And the second reaper now holds `free`: a third one finds nothing left.
            async with services.uow() as third:
                assert (
                    await third.runs.running_on_lost_workers(
                        seen_before=T0, overdue_at=T0, limit=10
                    )
                    == []
                )


async def test_search_matches_task_key_or_error_as_literal_text(services: Services) -> None:
    percent = new_run(task_name="report.50%x")
    fifty = new_run(task_name="report.500")
    underscore = new_run(task_name="t", idempotency_key="Key_A")
    lookalike = new_run(task_name="t", idempotency_key="keyBa")
    full = new_run(task_name="t", error=RunError("OSError", "Disk FULL"))
    await add_runs(services, percent, fifty, underscore, lookalike, full)

    async def found(search: str) -> set[uuid.UUID]:
        async with services.uow() as uow:
            page = await uow.runs.page(
                RunFilter(search=search), RunOrder.CREATED_AT_ASC, PageRequest(first=100)
            )
        return {run.id for run in page.items}

    assert await found("50%") == {percent.id}
    assert await found("y_a") == {underscore.id}
    assert await found("disk full") == {full.id}
    assert await found("report") == {percent.id, fifty.id}


@pytest.mark.parametrize(
    "key", ["x", "2026-01-01T00:00:00|nope", "2026-01-01T00:00:00|" + str(uuid.UUID(int=1))]
)
@pytest.mark.parametrize("field", ["after", "before"])
async def test_an_unparsable_run_key_names_its_argument(
    services: Services, key: str, field: str
) -> None:
    request = (
        PageRequest(first=1, after=key) if field == "after" else PageRequest(last=1, before=key)
    )
    async with services.uow() as uow:
        with pytest.raises(InvalidInput) as caught:
            await uow.runs.page(RunFilter(), RunOrder.CREATED_AT_DESC, request)
    assert caught.value.path == [field]


@pytest.fixture
async def listed(services: Services) -> tuple[list[uuid.UUID], list[Run]]:
    """Two users and 30 runs of theirs, many created at the same instant."""
    users = [await add_user(services) for _ in range(2)]
    runs = [
        new_run(
            task_name=f"task.{n % 3}",
            status=list(RunStatus)[n % len(RunStatus)],
            created_by=users[n % 2] if n % 5 else None,
            # Runs share instants in fours, so ties fall to the ID.
            created_at=T0 + timedelta(seconds=n // 4),
        )
        for n in range(30)
    ]
    await add_runs(services, *runs)
    return users, runs


def matches(run: Run, f: RunFilter) -> bool:
    """What the filter means, written plainly."""
    return (
        (f.statuses is None or run.status in f.statuses)
        and (f.task_name is None or run.task_name == f.task_name)
        and (f.created_by is None or run.created_by == f.created_by)
        and (f.created_after is None or run.created_at >= f.created_after)
        and (f.created_before is None or run.created_at < f.created_before)
    )


instants = st.none() | st.integers(0, 8).map(lambda s: T0 + timedelta(seconds=s))
filters: st.SearchStrategy[dict[str, Any]] = st.fixed_dictionaries(
    {
        "statuses": st.none() | st.frozensets(st.sampled_from(RunStatus), min_size=1),
        "task_name": st.none() | st.sampled_from(["task.0", "task.1", "task.2", "task.9"]),
        "creator": st.none() | st.integers(0, 1),
        "created_after": instants,
        "created_before": instants,
    }
)


async def walk(
    services: Services, f: RunFilter, order: RunOrder, size: int, *, backward: bool
) -> list[Run]:
    """Every run of the list, page by page, checking each page's flags on the way."""
    seen: list[Run] = []
    cursor: str | None = None
    while True:
        request = (
            PageRequest(last=size, before=cursor)
            if backward
            else PageRequest(first=size, after=cursor)
        )
        async with services.uow() as uow:
            page = await uow.runs.page(f, order, request)
        assert len(page.items) == len(page.keys) <= size
        ahead, behind = (
            (page.has_previous, page.has_next) if backward else (page.has_next, page.has_previous)
        )
        assert behind is (cursor is not None)
        seen = page.items + seen if backward else seen + page.items
        if not ahead:
            return seen
        cursor = page.keys[0] if backward else page.keys[-1]


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    chosen=filters,
    order=st.sampled_from(RunOrder),
    size=st.integers(1, 12),
    backward=st.booleans(),
)
async def test_pages_walk_every_matching_run_once_in_order_either_way(
    services: Services,
    listed: tuple[list[uuid.UUID], list[Run]],
    chosen: dict[str, Any],
    order: RunOrder,
    size: int,
    backward: bool,
) -> None:
    users, runs = listed
    creator = chosen.pop("creator")
    f = RunFilter(created_by=None if creator is None else users[creator], **chosen)
    expected = sorted(
        (run for run in runs if matches(run, f)),
        key=lambda run: (run.created_at, run.id),
        reverse=order is RunOrder.CREATED_AT_DESC,
    )
    assert await walk(services, f, order, size, backward=backward) == expected
    async with services.uow() as uow:
        first = await uow.runs.page(f, order, PageRequest(first=1))
    assert first.total_count == len(expected)
