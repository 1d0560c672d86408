"""Reading runs: visibility per role, batch reads in key order, pages, redaction."""

import uuid

import pytest

from domain.errors import NotFound, PermissionDenied
from domain.identity.models import RequestMeta, Role, Scope, Viewer
from domain.paging import PageRequest
from domain.runs.execution import Claim
from domain.runs.models import EventKind, LogLevel, Run, RunError, RunFilter, RunOrder, RunStatus
from tests.unit.run_fakes import World, make_task, make_viewer

FIRST_10 = PageRequest(first=10)


async def start(world: World, viewer: Viewer) -> Run:
    """A run of `sum` by `viewer`."""
    if not world.store.state.tasks:
        await world.service.register_tasks([make_task(max_attempts=1)])
    world.clock.advance(1)
    return await world.service.start_run(
        viewer=viewer, meta=RequestMeta(), task="sum", params={"a": 1, "b": 2}
    )


async def claimed(world: World, run: Run) -> Claim:
    """The run claimed by worker w1."""
    claim = await world.executor.claim(run.id, "w1")
    assert isinstance(claim, Claim)
    return claim


async def test_tasks_are_listed_by_name_for_readers() -> None:
    world = World()
    await world.service.register_tasks([make_task("zip"), make_task("add")])
    tasks = await world.service.list_tasks(viewer=make_viewer(Role.VIEWER))
    assert [task.name for task in tasks] == ["add", "zip"]
    assert [t.name if t else None for t in await world.service.get_tasks(["zip", "no"])] == [
        "zip",
        None,
    ]
    with pytest.raises(PermissionDenied):
        await world.service.list_tasks(viewer=make_viewer(scopes=frozenset({Scope.WRITE})))


async def test_get_runs_keeps_key_order_and_hides_others_runs() -> None:
    world, ada, bob, admin = World(), make_viewer(), make_viewer(), make_viewer(Role.ADMIN)
    mine, theirs = await start(world, ada), await start(world, bob)
    ids = [theirs.id, uuid.uuid4(), mine.id]
    assert [r.id if r else None for r in await world.service.get_runs(viewer=ada, ids=ids)] == [
        None,
        None,
        mine.id,
    ]
    seen = await world.service.get_runs(viewer=admin, ids=ids)
    assert [r.id if r else None for r in seen] == [theirs.id, None, mine.id]


async def test_page_runs_shows_non_admins_only_their_own() -> None:
    world, ada, bob, admin = World(), make_viewer(), make_viewer(), make_viewer(Role.ADMIN)
    mine = [await start(world, ada) for _ in range(2)]
    await start(world, bob)
    order = RunOrder.CREATED_AT_ASC
    page = await world.service.page_runs(
        viewer=ada, run_filter=RunFilter(), order=order, request=FIRST_10
    )
    assert sorted(r.id for r in page.items) == sorted(r.id for r in mine)
    assert page.total_count == 2
    spying = await world.service.page_runs(
        viewer=ada, run_filter=RunFilter(created_by=bob.user.id), order=order, request=FIRST_10
    )
    assert (spying.items, spying.total_count) == ([], 0)
    everyone = await world.service.page_runs(
        viewer=admin, run_filter=RunFilter(), order=order, request=FIRST_10
    )
    assert everyone.total_count == 3
    of_bob = await world.service.page_runs(
        viewer=admin, run_filter=RunFilter(created_by=bob.user.id), order=order, request=FIRST_10
    )
    assert of_bob.total_count == 1


async def test_runs_of_creators_answers_each_user_in_order_within_sight() -> None:
    world, ada, bob, admin = World(), make_viewer(), make_viewer(), make_viewer(Role.ADMIN)
    ada_runs = [await start(world, ada) for _ in range(3)]
    bob_run = await start(world, bob)
    users = [bob.user.id, ada.user.id]
    seen_by_ada = await world.service.runs_of_creators(viewer=ada, user_ids=users, limit=2)
    assert [[r.id for r in runs] for runs in seen_by_ada] == [[], [ada_runs[2].id, ada_runs[1].id]]
    seen_by_admin = await world.service.runs_of_creators(viewer=admin, user_ids=users, limit=5)
    assert [len(runs) for runs in seen_by_admin] == [1, 3]
    assert seen_by_admin[0][0].id == bob_run.id


async def test_logs_and_events_page_only_for_those_who_see_the_run() -> None:
    world, ada = World(), make_viewer()
    run = await start(world, ada)
    claim = await claimed(world, run)
    for line in ("one", "two", "three"):
        await world.executor.log(claim, LogLevel.INFO, line)
    logs = await world.service.page_logs(viewer=ada, run_id=run.id, request=PageRequest(last=2))
    assert [e.message for e in logs.items] == ["two", "three"]
    assert logs.has_previous
    events = await world.service.page_events(viewer=ada, run_id=run.id, request=FIRST_10)
    assert [e.seq for e in events.items] == [1, 2, 3, 4, 5]
    for read in (world.service.page_logs, world.service.page_events):
        with pytest.raises(NotFound):
            await read(viewer=make_viewer(), run_id=run.id, request=FIRST_10)


async def test_loader_reads_give_attempts_and_newest_logs_per_run() -> None:
    world, ada = World(), make_viewer()
    first, second = await start(world, ada), await start(world, ada)
    claim = await claimed(world, first)
    for line in ("a", "b", "c"):
        await world.executor.log(claim, LogLevel.INFO, line)
    attempts = await world.service.attempts_of([second.id, first.id])
    assert [[a.number for a in each] for each in attempts] == [[], [1]]
    logs = await world.service.latest_logs([first.id, second.id], limit=2)
    assert [[e.message for e in each] for each in logs] == [["b", "c"], []]
    assert all(e.kind is EventKind.LOG for e in logs[0])


async def test_tracebacks_reach_admins_only() -> None:
    world, ada, admin = World(), make_viewer(), make_viewer(Role.ADMIN)
    run = await start(world, ada)
    error = RunError("ValueError", "bad", traceback="Traceback (most recent call last): ...")
    await world.executor.fail(await claimed(world, run), error)
    [as_owner] = await world.service.get_runs(viewer=ada, ids=[run.id])
    [as_admin] = await world.service.get_runs(viewer=admin, ids=[run.id])
    assert as_owner is not None
    assert as_admin is not None
    assert as_owner.status is RunStatus.FAILED
    assert as_owner.error == RunError("ValueError", "bad")
    assert as_admin.error == error
    events = await world.service.page_events(viewer=ada, run_id=run.id, request=FIRST_10)
    assert events.items[-1].error == RunError("ValueError", "bad")
