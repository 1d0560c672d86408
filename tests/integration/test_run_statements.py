"""How much SQL the run list costs: the same few statements for any page size, on indexes."""

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import event, text
from strawberry import relay

from domain.identity.models import Role
from domain.runs import models
from infra.bootstrap import Services
from tests.conftest import register_tasks, sign_in
from tests.graphql_client import gql

T0 = datetime(2026, 1, 1, tzinfo=UTC)
LIST = """
query($first: Int!) {
  runs(first: $first) {
    totalCount
    edges { node {
      id status
      task { name defaults { maxAttempts } }
      createdBy { displayName runs(first: 2) { id } }
      attempts { number outcome }
      latestLogs(count: 3) { message }
      retryOf { id status }
    } }
  }
}
"""


@contextmanager
def statements(services: Services) -> Iterator[list[tuple[str, Any]]]:
    """Every SQL statement the services' engine runs inside the block, with its parameters."""
    seen: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        seen.append((statement, parameters))

    engine = services.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def _run(creator: uuid.UUID, n: int, **fields: Any) -> models.Run:
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "task_name": "demo.count",
        "params": {"to": n},
        "status": models.RunStatus.SUCCEEDED,
        "priority": models.Priority.NORMAL,
        "created_by": creator,
        "created_at": T0 + timedelta(seconds=n),
        "max_attempts": 3,
        "timeout_seconds": 30.0,
        "backoff_seconds": 2.0,
        "attempt": 1,
    }
    return models.Run(**(values | fields))


async def add_listed_runs(services: Services, creator: uuid.UUID) -> None:
    """110 runs with an attempt and 4 log lines each; the newest 100 retry the oldest 10.

    The runs retried lie outside both pages, so each page loads them the same way.
    """
    oldest = [_run(creator, n) for n in range(10)]
    newest = [_run(creator, n, retry_of=oldest[n % 10].id) for n in range(10, 110)]
    async with services.uow() as uow:
        for run in oldest + newest:
            await uow.runs.add(run)
            done = models.AttemptOutcome.SUCCEEDED
            await uow.runs.add_attempt(
                models.RunAttempt(run.id, 1, "w", run.created_at, outcome=done)
            )
            for line in range(4):
                log = models.RunEvent(
                    run_id=run.id,
                    seq=0,
                    at=run.created_at,
                    kind=models.EventKind.LOG,
                    level=models.LogLevel.INFO,
                    message=f"line {line}",
                )
                await uow.run_events.append(run.id, log)
        await uow.commit()


async def test_a_page_of_100_runs_costs_the_same_statements_as_a_page_of_10(
    client: httpx.AsyncClient, services: Services
) -> None:
    await register_tasks(services)
    token = await sign_in(services, Role.OPERATOR)
    creator = (await services.identity.authenticate(token)).user.id
    await add_listed_runs(services, creator)
    counted: dict[int, int] = {}
    for size in (10, 100):
        with statements(services) as seen:
            body = await gql(client, LIST, token, first=size)
        assert "errors" not in body, body["errors"]
        nodes = [edge["node"] for edge in body["data"]["runs"]["edges"]]
        assert len(nodes) == size
        assert all(node["retryOf"] and node["task"] and node["createdBy"] for node in nodes)
        assert all(len(node["latestLogs"]) == 3 and node["attempts"] for node in nodes)
        counted[size] = len(seen)
    assert counted[10] == counted[100]
    # The page with its total and neighbours, then one batch per relation.
    assert counted[100] <= 12, counted


async def _add_many_runs(services: Services, creator: uuid.UUID, other: uuid.UUID) -> None:
    """20,000 runs of `other` and 200 of `creator`, then fresh planner statistics."""
    insert = """
    INSERT INTO runs (id, task_name, params, status, priority, created_by, created_at,
                      max_attempts, timeout_seconds, backoff_seconds, attempt, last_seq)
    SELECT gen_random_uuid(), 'demo.count', '{}'::jsonb,
           CASE WHEN i % 100 = 0 THEN 'failed' ELSE 'succeeded' END, 'normal',
           CASE WHEN i % 101 = 0 THEN CAST(:creator AS uuid) ELSE CAST(:other AS uuid) END,
           CAST(:t0 AS timestamptz) + i * interval '1 second', 3, 30, 2, 1, 0
    FROM generate_series(1, 20200) AS i
    """
    async with services.engine.begin() as connection:
        await connection.execute(text(insert), {"creator": creator, "other": other, "t0": T0})
        await connection.execute(text("ANALYZE runs"))


async def _plans(services: Services, seen: list[tuple[str, Any]]) -> list[str]:
    """The plan of each statement that read runs, as PostgreSQL would run it."""
    plans = []
    async with services.engine.connect() as connection:
        for statement, parameters in seen:
            if "FROM runs" in statement:
                result = await connection.exec_driver_sql(f"EXPLAIN {statement}", parameters)
                plans.append("\n".join(row[0] for row in result))
    return plans


@pytest.mark.parametrize(
    ("who", "run_filter", "index"),
    [
        ("operator", {}, "ix_runs_created_by_created_at_id"),
        ("admin", {}, "ix_runs_created_at_id"),
        ("admin", {"status": ["FAILED"]}, "ix_runs_status_created_at_id"),
        ("admin", {"createdBy": "creator"}, "ix_runs_created_by_created_at_id"),
    ],
    ids=["own-runs", "all-runs", "by-status", "by-creator"],
)
async def test_the_run_lists_are_read_through_indexes(
    client: httpx.AsyncClient,
    services: Services,
    who: str,
    run_filter: dict[str, Any],
    index: str,
) -> None:
    operator = await sign_in(services, Role.OPERATOR)
    admin = await sign_in(services, Role.ADMIN)
    creator = (await services.identity.authenticate(operator)).user.id
    other = (await services.identity.authenticate(admin)).user.id
    await _add_many_runs(services, creator, other)
    if run_filter.get("createdBy") == "creator":
        run_filter = {"createdBy": str(relay.GlobalID("User", str(creator)))}
    query = "query($f: RunFilter) { runs(first: 50, filter: $f) { totalCount edges { cursor } } }"
    with statements(services) as seen:
        body = await gql(client, query, operator if who == "operator" else admin, f=run_filter)
    assert "errors" not in body, body["errors"]
    assert len(body["data"]["runs"]["edges"]) == 50
    [page, *counts] = await _plans(services, seen)
    # Read in list order along the index, stopping after the page: no sort, no scan.
    assert f"Index Scan Backward using {index} on runs" in page, page
    assert "Sort" not in page, page
    if who == "operator" or run_filter:
        # A narrowed total is counted on an index too; only the admin's whole list is not.
        assert all("Seq Scan on runs" not in plan for plan in counts), counts
