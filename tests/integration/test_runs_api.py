"""The runs API as a client sees it: the mapping of domain values, then GraphQL over HTTP."""

import uuid
from datetime import UTC, datetime
from functools import cache
from typing import Any

import httpx
import pytest
from graphql import GraphQLError, GraphQLSchema, OperationDefinitionNode, parse
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import text
from strawberry import relay

from api.errors import ErrorCode, UserError, apply_error_contract, run_mutation
from api.limits import query_cost
from api.loaders import load_by_size
from api.paging import encode_cursor, page_request
from api.runs.events import (
    RunLogEvent,
    RunProgressEvent,
    RunResultEvent,
    RunStatusEvent,
    event_view,
)
from api.runs.inputs import RunFilter, run_filter
from api.schema import build_schema
from domain import errors as domain
from domain.identity.models import RequestMeta, Role
from domain.runs import models
from infra.bootstrap import Services
from infra.settings import Settings
from tests.conftest import sign_in
from tests.graphql_client import codes, gql

T0 = datetime(2026, 1, 1, tzinfo=UTC)

# -- pure mappings ----------------------------------------------------------------------


async def test_invalid_fields_become_one_user_error_per_problem() -> None:
    problems = [
        domain.InvalidInput("must be at least 1", path=["params", "to"]),
        domain.InvalidInput("must be an integer", path=["params", "delayMs"]),
    ]

    async def refuse() -> list[UserError]:
        raise domain.InvalidFields("the parameters do not match", problems=problems)

    errors = await run_mutation(refuse, lambda *, user_errors: user_errors)
    assert [(e.code, e.path, e.message) for e in errors] == [
        (ErrorCode.BAD_USER_INPUT, ["input", "params", "to"], "must be at least 1"),
        (ErrorCode.BAD_USER_INPUT, ["input", "params", "delayMs"], "must be an integer"),
    ]


def _top_level(original: Exception) -> GraphQLError:
    error = GraphQLError(str(original), path=["runEvents"], original_error=original)
    apply_error_contract(error, None)
    return error


@given(st.integers(min_value=0, max_value=2**31))
def test_a_lagging_stream_is_retriable_and_says_where_to_resume(seq: int) -> None:
    error = _top_level(domain.StreamLagged("too slow", resume_after_seq=seq))
    assert error.extensions == {"code": "UNAVAILABLE", "retriable": True, "resumeAfterSeq": seq}


def test_bad_input_at_the_top_level_names_its_argument() -> None:
    error = _top_level(domain.InvalidInput("not a Run ID", path=["filter", "createdBy"]))
    assert error.extensions == {"code": "BAD_USER_INPUT", "argumentPath": ["filter", "createdBy"]}


@pytest.mark.parametrize("argument", ["after", "before"])
def test_a_cursor_of_another_list_is_refused_at_its_own_argument(argument: str) -> None:
    foreign = encode_cursor("AuditEntry", "2026-01-01T00:00:00+00:00|x")
    cursors: dict[str, Any] = {argument: foreign}
    with pytest.raises(domain.InvalidInput) as refused:
        page_request("Run", last=10, **cursors)
    assert refused.value.path == [argument]


@given(st.text(min_size=1, max_size=60))
def test_a_cursor_names_the_position_it_was_made_for(key: str) -> None:
    request = page_request("Run", last=5, before=encode_cursor("Run", key))
    assert (request.before, request.last, request.after) == (key, 5, None)


def test_a_creator_filter_takes_only_user_ids() -> None:
    user_id = uuid.uuid4()
    mapped = run_filter(RunFilter(created_by=relay.GlobalID("User", str(user_id))))
    assert mapped.created_by == user_id
    with pytest.raises(domain.InvalidInput) as refused:
        run_filter(RunFilter(created_by=relay.GlobalID("Run", str(user_id))))
    assert refused.value.path == ["filter", "createdBy"]


Kind = models.EventKind


def _event(kind: models.EventKind, **fields: Any) -> models.RunEvent:
    return models.RunEvent(run_id=uuid.uuid4(), seq=7, at=T0, kind=kind, **fields)


@pytest.mark.parametrize(
    ("event", "view"),
    [
        (
            _event(models.EventKind.STATUS, status=models.RunStatus.RUNNING, attempt=1),
            RunStatusEvent,
        ),
        (_event(models.EventKind.PROGRESS, fraction=0.5, message="half"), RunProgressEvent),
        (_event(models.EventKind.LOG, level=models.LogLevel.INFO, message="hi"), RunLogEvent),
        (
            _event(models.EventKind.RESULT, status=models.RunStatus.SUCCEEDED, result=1),
            RunResultEvent,
        ),
    ],
)
def test_each_kind_of_event_has_its_own_type(event: models.RunEvent, view: type) -> None:
    shown = event_view(event)
    assert type(shown) is view
    assert (shown.seq, shown.at, shown.run_id) == (7, T0, relay.GlobalID("Run", str(event.run_id)))


def test_an_event_missing_what_its_kind_promises_is_an_error_not_a_guess() -> None:
    with pytest.raises(ValueError, match="lacks a field"):
        event_view(_event(Kind.PROGRESS))


@given(st.lists(st.tuples(st.sampled_from("abcdef"), st.integers(1, 4)), min_size=1))
async def test_sized_keys_load_in_key_order_with_one_call_per_size(
    keys: list[tuple[str, int]],
) -> None:
    calls: list[tuple[list[str], int]] = []

    async def load(batch: list[str], size: int) -> list[str]:
        calls.append((batch, size))
        return [f"{key}{size}" for key in batch]

    assert await load_by_size(keys, load) == [f"{key}{size}" for key, size in keys]
    assert sorted(size for _, size in calls) == sorted({size for _, size in keys})


@cache
def _schema() -> GraphQLSchema:
    return build_schema(Settings())._schema


def _cost(document: str) -> int:
    [operation] = parse(document).definitions
    assert isinstance(operation, OperationDefinitionNode)
    return query_cost(_schema(), operation, {}, {})


FRONTEND_LIST = """
{ runs(first: 50) { totalCount pageInfo { hasNextPage endCursor }
    edges { cursor node { id status taskName createdAt finishedAt progress { fraction }
      task { name description } createdBy { id displayName }
      latestLogs(count: 3) { seq at level message } } } } }
"""


def test_the_frontend_list_fits_the_default_cost_limit() -> None:
    assert _cost(FRONTEND_LIST) <= 5000


def test_a_log_count_multiplies_the_cost_like_a_page_size() -> None:
    few = _cost("{ runs(first: 100) { edges { node { latestLogs(count: 1) { message } } } } }")
    many = _cost("{ runs(first: 100) { edges { node { latestLogs(count: 20) { message } } } } }")
    assert many - few == 100 * 19
    wide = (
        "{ runs(first: 100) { edges { node { latestLogs(count: 20) { seq at level message } } } } }"
    )
    assert _cost(wide) > 5000


LOGS_OF_RUNS = "{ runs(first: %d) { edges { node { latestLogs%s { message } } } } }"


@given(st.integers(1, 100))
def test_an_omitted_log_count_costs_its_default_of_three(first: int) -> None:
    omitted = _cost(LOGS_OF_RUNS % (first, ""))
    assert omitted == _cost(LOGS_OF_RUNS % (first, "(count: 3)"))
    assert omitted - _cost(LOGS_OF_RUNS % (first, "(count: 1)")) == first * 2


# -- GraphQL over HTTP ------------------------------------------------------------------

START = """
mutation {
  startRun(input: {task: "demo.count", params: {to: 20, delayMs: 100}}) {
    run { id status }
    userErrors { code message path }
  }
}
"""
START_WITH = """
mutation($input: StartRunInput!) {
  startRun(input: $input) { run { id status retryOf { id } } userErrors { code message path } }
}
"""
CANCEL = """
mutation($id: ID!) { cancelRun(id: $id) { run { id status } userErrors { code message path } } }
"""
RETRY = """
mutation($id: ID!) {
  retryRun(id: $id) { run { id status retryOf { id } } userErrors { code message path } }
}
"""
RUN = "query($id: ID!) { run(id: $id) { id status taskName } }"
NODE = "query($id: ID!) { node(id: $id) { id ... on Run { status } } }"


async def start_run(client: httpx.AsyncClient, token: str, **fields: Any) -> str:
    """Start a run of demo.count (or of what `fields` say) and return its global ID."""
    run_input = {"task": "demo.count", "params": {"to": 3, "delayMs": 0}} | fields
    body = await gql(client, START_WITH, token, input=run_input)
    payload = body["data"]["startRun"]
    assert payload["userErrors"] == [], payload
    run_id: str = payload["run"]["id"]
    return run_id


async def run_count(services: Services) -> int:
    """How many runs PostgreSQL holds."""
    async with services.engine.connect() as connection:
        return int((await connection.execute(text("SELECT count(*) FROM runs"))).scalar_one())


async def test_the_frontends_start_queues_a_run_in_postgresql(
    client: httpx.AsyncClient, services: Services, operator: str
) -> None:
    body = await gql(client, START, operator)
    payload = body["data"]["startRun"]
    assert payload["userErrors"] == []
    assert payload["run"]["status"] == "QUEUED"
    viewer = await services.identity.authenticate(operator)
    run_id = uuid.UUID(relay.GlobalID.from_id(payload["run"]["id"]).node_id)
    [stored] = await services.runs.get_runs(viewer=viewer, ids=[run_id])
    assert stored is not None
    assert (stored.task_name, stored.params) == ("demo.count", {"to": 20, "delayMs": 100})


@pytest.mark.parametrize(
    ("run_input", "expected"),
    [
        (
            {"task": "no.such.task"},
            [("BAD_USER_INPUT", ["input", "task"])],
        ),
        (
            {"task": "demo.count", "params": {"to": 0, "delayMs": "slow", "colour": "red"}},
            [
                ("BAD_USER_INPUT", ["input", "params"]),
                ("BAD_USER_INPUT", ["input", "params", "delayMs"]),
                ("BAD_USER_INPUT", ["input", "params", "to"]),
            ],
        ),
        (
            {"task": "demo.count", "params": {"to": 1, "pad": "x" * 65 * 1024}},
            [("BAD_USER_INPUT", ["input", "params"])],
        ),
        (
            {"task": "demo.count", "params": {"to": 1}, "idempotencyKey": "has spaces"},
            [("BAD_USER_INPUT", ["input", "idempotencyKey"])],
        ),
    ],
    ids=["unknown-task", "every-failing-field", "params-over-64kb", "bad-idempotency-key"],
)
async def test_a_bad_start_gets_a_typed_error_per_problem_and_writes_no_row(
    client: httpx.AsyncClient,
    services: Services,
    operator: str,
    run_input: dict[str, Any],
    expected: list[tuple[str, list[str]]],
) -> None:
    body = await gql(client, START_WITH, operator, input=run_input)
    payload = body["data"]["startRun"]
    assert payload["run"] is None
    assert sorted((e["code"], e["path"]) for e in payload["userErrors"]) == expected
    assert all(e["message"] for e in payload["userErrors"])
    assert await run_count(services) == 0


async def test_a_viewer_may_not_start_a_run(
    client: httpx.AsyncClient, services: Services, operator: str
) -> None:
    viewer = await sign_in(services, Role.VIEWER)
    payload = (await gql(client, START, viewer))["data"]["startRun"]
    assert [e["code"] for e in payload["userErrors"]] == ["FORBIDDEN"]
    assert await run_count(services) == 0


async def test_an_anonymous_start_is_refused_at_the_top_level_and_audited(
    client: httpx.AsyncClient, services: Services, operator: str
) -> None:
    assert codes(await gql(client, START)) == ["UNAUTHENTICATED"]
    assert await run_count(services) == 0
    admin = await sign_in(services, Role.ADMIN)
    audit = """{ auditLog(first: 5, filter: {action: "run.start"}) {
      edges { node { outcome actor { id } } } } }"""
    entries = (await gql(client, audit, admin))["data"]["auditLog"]["edges"]
    assert [e["node"] for e in entries] == [{"outcome": "REFUSED", "actor": None}]


async def test_another_users_run_is_not_found_and_only_an_admin_may_cancel_it(
    client: httpx.AsyncClient, services: Services, operator: str
) -> None:
    run_id = await start_run(client, operator)
    other = await sign_in(services, Role.OPERATOR)
    assert (await gql(client, RUN, other, id=run_id))["data"]["run"] is None
    assert (await gql(client, NODE, other, id=run_id))["data"]["node"] is None
    for mutation, field in ((CANCEL, "cancelRun"), (RETRY, "retryRun")):
        payload = (await gql(client, mutation, other, id=run_id))["data"][field]
        assert payload["run"] is None
        assert [(e["code"], e["path"]) for e in payload["userErrors"]] == [("NOT_FOUND", ["id"])]
    admin = await sign_in(services, Role.ADMIN)
    assert (await gql(client, NODE, admin, id=run_id))["data"]["node"]["status"] == "QUEUED"
    cancelled = (await gql(client, CANCEL, admin, id=run_id))["data"]["cancelRun"]
    assert cancelled == {"run": {"id": run_id, "status": "CANCELLED"}, "userErrors": []}


async def test_cancelling_a_run_that_ended_is_a_conflict(
    client: httpx.AsyncClient, operator: str
) -> None:
    run_id = await start_run(client, operator)
    first = (await gql(client, CANCEL, operator, id=run_id))["data"]["cancelRun"]
    assert first["run"]["status"] == "CANCELLED"
    again = (await gql(client, CANCEL, operator, id=run_id))["data"]["cancelRun"]
    assert again["run"] is None
    assert [e["code"] for e in again["userErrors"]] == ["CONFLICT"]


async def test_an_id_of_another_type_is_bad_input_at_id(
    client: httpx.AsyncClient, services: Services, operator: str
) -> None:
    user_id = str(relay.GlobalID("User", str(uuid.uuid4())))
    payload = (await gql(client, CANCEL, operator, id=user_id))["data"]["cancelRun"]
    assert [(e["code"], e["path"]) for e in payload["userErrors"]] == [("BAD_USER_INPUT", ["id"])]
    body = await gql(client, RUN, operator, id=user_id)
    assert codes(body) == ["BAD_USER_INPUT"]
    assert body["errors"][0]["extensions"]["argumentPath"] == ["id"]


async def test_a_repeated_idempotency_key_returns_the_first_run(
    client: httpx.AsyncClient, services: Services, operator: str
) -> None:
    first = await start_run(client, operator, idempotencyKey="nightly-2026-01-01")
    second = await start_run(client, operator, idempotencyKey="nightly-2026-01-01")
    assert first == second
    assert await run_count(services) == 1


async def test_a_retry_is_a_new_run_linked_to_the_original(
    client: httpx.AsyncClient, operator: str
) -> None:
    original = await start_run(client, operator)
    too_soon = (await gql(client, RETRY, operator, id=original))["data"]["retryRun"]
    assert [e["code"] for e in too_soon["userErrors"]] == ["CONFLICT"]
    await gql(client, CANCEL, operator, id=original)
    retried = (await gql(client, RETRY, operator, id=original))["data"]["retryRun"]
    assert retried["userErrors"] == []
    assert retried["run"]["id"] != original
    assert (retried["run"]["status"], retried["run"]["retryOf"]) == ("QUEUED", {"id": original})


PAGE = """
query($first: Int, $after: String, $last: Int, $before: String, $filter: RunFilter,
      $orderBy: RunOrder) {
  runs(first: $first, after: $after, last: $last, before: $before, filter: $filter,
       orderBy: $orderBy) {
    totalCount
    edges { cursor node { id } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}
"""
META = RequestMeta(ip="127.0.0.1", request_id="test-setup")


async def start_many(services: Services, token: str, count: int, **fields: Any) -> list[str]:
    """Start `count` runs through the service; their global IDs, newest first."""
    viewer = await services.identity.authenticate(token)
    runs = [
        await services.runs.start_run(
            viewer=viewer, meta=META, task="demo.count", params={"to": 1}, **fields
        )
        for _ in range(count)
    ]
    runs.sort(key=lambda run: (run.created_at, run.id), reverse=True)
    return [str(relay.GlobalID("Run", str(run.id))) for run in runs]


async def page_ids(client: httpx.AsyncClient, token: str, **arguments: Any) -> list[str]:
    """The run IDs of one page."""
    body = await gql(client, PAGE, token, **arguments)
    return [edge["node"]["id"] for edge in body["data"]["runs"]["edges"]]


async def test_runs_page_forward_and_backward_through_the_same_order(
    client: httpx.AsyncClient, services: Services, operator: str
) -> None:
    newest_first = await start_many(services, operator, 7)
    forward: list[str] = []
    after = None
    while True:
        body = await gql(client, PAGE, operator, first=3, after=after)
        runs = body["data"]["runs"]
        assert runs["totalCount"] == 7
        assert runs["pageInfo"]["hasPreviousPage"] is (after is not None)
        forward += [edge["node"]["id"] for edge in runs["edges"]]
        if not runs["pageInfo"]["hasNextPage"]:
            break
        after = runs["pageInfo"]["endCursor"]
    assert forward == newest_first
    backward: list[str] = []
    before = None
    while True:
        runs = (await gql(client, PAGE, operator, last=3, before=before))["data"]["runs"]
        assert runs["pageInfo"]["hasNextPage"] is (before is not None)
        backward = [edge["node"]["id"] for edge in runs["edges"]] + backward
        if not runs["pageInfo"]["hasPreviousPage"]:
            break
        before = runs["pageInfo"]["startCursor"]
    assert backward == newest_first
    ascending = await page_ids(client, operator, first=10, orderBy={"direction": "ASC"})
    assert ascending == newest_first[::-1]


async def test_runs_filters_narrow_the_list_and_its_total(
    client: httpx.AsyncClient, services: Services, operator: str
) -> None:
    mine = await start_many(services, operator, 4)
    keyed = await start_many(services, operator, 1, idempotency_key="Nightly-Report-7")
    other = await sign_in(services, Role.OPERATOR)
    theirs = await start_many(services, other, 2)
    for run_id in mine[:2]:
        await gql(client, CANCEL, operator, id=run_id)
    admin = await sign_in(services, Role.ADMIN)
    other_id = (await services.identity.authenticate(other)).user.id

    async def ids(token: str, **run_filter: Any) -> set[str]:
        body = await gql(client, PAGE, token, first=50, filter=run_filter)
        assert body["data"]["runs"]["totalCount"] == len(body["data"]["runs"]["edges"])
        return {edge["node"]["id"] for edge in body["data"]["runs"]["edges"]}

    assert await ids(operator) == {*mine, *keyed}
    assert await ids(admin) == {*mine, *keyed, *theirs}
    assert await ids(operator, status=["CANCELLED"]) == set(mine[:2])
    assert await ids(operator, status=["QUEUED", "CANCELLED"]) == {*mine, *keyed}
    assert await ids(operator, task="demo.fail") == set()
    assert await ids(operator, search="nightly-report") == set(keyed)
    creator = str(relay.GlobalID("User", str(other_id)))
    assert await ids(admin, createdBy=creator) == set(theirs)
    assert await ids(operator, createdBy=creator) == set()
    body = await gql(client, "query($id: ID!) { run(id: $id) { createdAt } }", operator, id=mine[1])
    middle = body["data"]["run"]["createdAt"]
    assert await ids(operator, createdAfter=middle) == {mine[0], mine[1], *keyed}
    assert await ids(operator, createdBefore=middle) == set(mine[2:])


async def test_a_malformed_or_foreign_cursor_is_refused_at_its_argument(
    client: httpx.AsyncClient, services: Services, operator: str
) -> None:
    run_id = await start_many(services, operator, 1)
    events = await gql(
        client,
        "query($id: ID!) { run(id: $id) { events(first: 1) { edges { cursor } } } }",
        operator,
        id=run_id[0],
    )
    foreign = events["data"]["run"]["events"]["edges"][0]["cursor"]
    for arguments, argument in (
        ({"first": 5, "after": "not-a-cursor"}, "after"),
        ({"last": 5, "before": foreign}, "before"),
        ({"first": 0}, "first"),
        ({"first": 5, "last": 5}, "first"),
    ):
        body = await gql(client, PAGE, operator, **arguments)
        assert codes(body) == ["BAD_USER_INPUT"], arguments
        assert body["errors"][0]["extensions"]["argumentPath"] == [argument]


async def test_reading_runs_needs_a_signed_in_caller(client: httpx.AsyncClient) -> None:
    assert codes(await gql(client, PAGE, first=5)) == ["UNAUTHENTICATED"]
    assert codes(await gql(client, "{ tasks { name } }")) == ["UNAUTHENTICATED"]


async def test_the_catalog_lists_tasks_with_their_schema_and_defaults(
    client: httpx.AsyncClient, operator: str
) -> None:
    query = """
    { tasks { name paramsSchema defaults { timeoutSeconds maxAttempts backoffSeconds priority } }
      count: task(name: "demo.count") { name description }
      missing: task(name: "no.such.task") { name } }
    """
    data = (await gql(client, query, operator))["data"]
    by_name = {task["name"]: task for task in data["tasks"]}
    assert {"demo.count", "demo.fail"} <= set(by_name)
    assert {"to", "delayMs"} <= set(by_name["demo.count"]["paramsSchema"]["properties"])
    assert by_name["demo.count"]["defaults"]["maxAttempts"] >= 1
    assert data["count"]["name"] == "demo.count"
    assert data["count"]["description"]
    assert data["missing"] is None


async def test_sizes_left_out_inside_fragments_cost_their_defaults_too(
    client: httpx.AsyncClient, operator: str
) -> None:
    spelled = "{ runs(first: 10) { edges { node { latestLogs(count: 3) { seq } } } } }"
    inline = "{ runs(first: 10) { edges { node { ... on Run { latestLogs { seq } } } } } }"
    named = """{ runs(first: 10) { edges { node { ...Logs } } } }
    fragment Logs on Run { latestLogs { seq } }"""
    for query in (spelled, inline, named):
        body = await gql(client, query, operator)
        assert "errors" not in body, body
        # runs 1, then edges, node and latestLogs 10 each, then seq 3 for each of 10 runs.
        assert body["extensions"]["cost"]["requestedQueryCost"] == 1 + 3 * 10 + 30, query


TRACEBACK = "Traceback (most recent call last):\n  File ...\nDemoFailure: boom"


async def add_run(services: Services, created_by: uuid.UUID, **fields: Any) -> models.Run:
    """A run written straight to the store, as a worker would have left it."""
    now = datetime.now(UTC)
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "task_name": "demo.fail",
        "params": {},
        "status": models.RunStatus.FAILED,
        "priority": models.Priority.NORMAL,
        "created_by": created_by,
        "created_at": now,
        "max_attempts": 1,
        "timeout_seconds": 30.0,
        "backoff_seconds": 1.0,
        "attempt": 1,
        "started_at": now,
        "finished_at": now,
        "error": models.RunError("DemoFailure", "boom", traceback=TRACEBACK),
    }
    run = models.Run(**(values | fields))
    attempt = models.RunAttempt(
        run.id, 1, "worker-1", now, now, models.AttemptOutcome.FAILED, run.error
    )
    async with services.uow() as uow:
        await uow.runs.add(run)
        await uow.runs.add_attempt(attempt)
        await uow.commit()
    return run


async def add_logs(services: Services, run_id: uuid.UUID, count: int) -> list[models.RunEvent]:
    """Append log lines "line 1" to "line `count`" to a run in one transaction; as stored."""
    async with services.uow() as uow:
        stored = [
            await uow.run_events.append(
                run_id,
                models.RunEvent(
                    run_id=run_id,
                    seq=0,
                    at=datetime.now(UTC),
                    kind=models.EventKind.LOG,
                    level=models.LogLevel.INFO,
                    message=f"line {n}",
                ),
            )
            for n in range(1, count + 1)
        ]
        await uow.commit()
    return stored


async def test_tracebacks_are_shown_to_administrators_only(
    client: httpx.AsyncClient, services: Services, operator: str
) -> None:
    creator = (await services.identity.authenticate(operator)).user.id
    run = await add_run(services, creator)
    query = """
    query($id: ID!) { run(id: $id) {
      status error { type message traceback } attempts { outcome error { traceback } } } }
    """
    run_id = str(relay.GlobalID("Run", str(run.id)))
    own = (await gql(client, query, operator, id=run_id))["data"]["run"]
    assert own["status"] == "FAILED"
    assert own["error"] == {"type": "DemoFailure", "message": "boom", "traceback": None}
    assert own["attempts"] == [{"outcome": "FAILED", "error": {"traceback": None}}]
    admin = await sign_in(services, Role.ADMIN)
    seen = (await gql(client, query, admin, id=run_id))["data"]["run"]
    assert seen["error"]["traceback"] == TRACEBACK
    assert seen["attempts"][0]["error"]["traceback"] == TRACEBACK


async def test_logs_page_both_ways_and_the_latest_lines_come_oldest_first(
    client: httpx.AsyncClient, services: Services, operator: str
) -> None:
    creator = (await services.identity.authenticate(operator)).user.id
    run = await add_run(services, creator)
    await add_logs(services, run.id, 5)
    query = """
    query($id: ID!, $count: Int!) { run(id: $id) {
      latestLogs(count: $count) { message level }
      tail: logs(last: 2) { totalCount edges { node { message } }
                            pageInfo { hasPreviousPage startCursor } }
      head: logs(first: 2) { edges { node { seq message } } pageInfo { hasNextPage } } } }
    """
    run_id = str(relay.GlobalID("Run", str(run.id)))
    data = (await gql(client, query, operator, id=run_id, count=2))["data"]["run"]
    assert data["latestLogs"] == [
        {"message": "line 4", "level": "INFO"},
        {"message": "line 5", "level": "INFO"},
    ]
    assert data["tail"]["totalCount"] == 5
    assert [e["node"]["message"] for e in data["tail"]["edges"]] == ["line 4", "line 5"]
    assert data["tail"]["pageInfo"]["hasPreviousPage"] is True
    assert [e["node"]["message"] for e in data["head"]["edges"]] == ["line 1", "line 2"]
    before = data["tail"]["pageInfo"]["startCursor"]
    earlier = await gql(
        client,
        "query($id: ID!, $before: String) { run(id: $id) { logs(last: 5, before: $before) {"
        " edges { node { message } } } } }",
        operator,
        id=run_id,
        before=before,
    )
    lines = earlier["data"]["run"]["logs"]["edges"]
    assert [e["node"]["message"] for e in lines] == ["line 1", "line 2", "line 3"]
    too_many = await gql(client, query, operator, id=run_id, count=21)
    assert codes(too_many) == ["BAD_USER_INPUT"]
    assert too_many["errors"][0]["extensions"]["argumentPath"] == ["count"]


async def test_events_page_in_sequence_for_clients_without_websockets(
    client: httpx.AsyncClient, services: Services, operator: str
) -> None:
    run_id = await start_run(client, operator)
    await gql(client, CANCEL, operator, id=run_id)
    query = """
    query($id: ID!, $after: String) { run(id: $id) { lastSeq events(first: 1, after: $after) {
      totalCount pageInfo { hasNextPage endCursor }
      edges { node { __typename seq runId
        ... on RunStatusEvent { status attempt }
        ... on RunResultEvent { status result error { type } } } } } } }
    """
    first = (await gql(client, query, operator, id=run_id))["data"]["run"]
    assert first["lastSeq"] == 2
    assert first["events"]["totalCount"] == 2
    [queued] = first["events"]["edges"]
    assert queued["node"] == {
        "__typename": "RunStatusEvent",
        "seq": 1,
        "runId": run_id,
        "status": "QUEUED",
        "attempt": 0,
    }
    after = first["events"]["pageInfo"]["endCursor"]
    second = (await gql(client, query, operator, id=run_id, after=after))["data"]["run"]
    [ended] = second["events"]["edges"]
    assert (ended["node"]["__typename"], ended["node"]["seq"]) == ("RunResultEvent", 2)
    assert ended["node"]["status"] == "CANCELLED"
    assert second["events"]["pageInfo"]["hasNextPage"] is False


async def test_a_users_runs_are_listed_newest_first_as_far_as_the_viewer_may_see(
    client: httpx.AsyncClient, services: Services, operator: str
) -> None:
    newest_first = await start_many(services, operator, 3)
    query = "query($first: Int!) { viewer { user { runs(first: $first) { id } } } }"
    data = (await gql(client, query, operator, first=2))["data"]
    assert [run["id"] for run in data["viewer"]["user"]["runs"]] == newest_first[:2]
    assert codes(await gql(client, query, operator, first=0)) == ["BAD_USER_INPUT"]
    creator = (await services.identity.authenticate(operator)).user.id
    other = await sign_in(services, Role.OPERATOR)
    node = "query($id: ID!) { node(id: $id) { ... on User { runs(first: 5) { id } } } }"
    user_id = str(relay.GlobalID("User", str(creator)))
    assert (await gql(client, node, other, id=user_id))["data"]["node"]["runs"] == []
