"""Plans and quotas over the GraphQL API: what users and administrators see and may change."""

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from litestar import Litestar

from domain.identity.models import Role
from infra.bootstrap import Services
from tests.conftest import sign_in
from tests.graphql_client import gql, receive, signed_in, subscribe
from tests.live import served

START = """
mutation($priority: Priority) {
  startRun(input: {task: "demo.count", params: {to: 1, delayMs: 0}, priority: $priority}) {
    run { id priority } userErrors { code message path }
  }
}
"""
VIEWER = """
{ viewer {
    plan { name displayName runsPerDay maxConcurrent defaultPriority maxPriority }
    quota { runsToday limit resetsAt running maxConcurrent }
} }
"""
USERS = """
query($filter: UserFilter, $first: Int, $after: String) {
  users(filter: $filter, first: $first, after: $after) {
    totalCount pageInfo { hasNextPage endCursor }
    edges { node { id plan role quota { runsToday limit } } }
  }
}
"""
CREATE_PLAN = """
mutation($input: CreatePlanInput!) {
  createPlan(input: $input) { plan { name runsPerDay } userErrors { code message path } }
}
"""
UPDATE_PLAN = """
mutation($input: UpdatePlanInput!) {
  updatePlan(input: $input) { plan { name runsPerDay } userErrors { code message path } }
}
"""
DELETE_PLAN = """
mutation($name: String!, $reassignTo: String) {
  deletePlan(name: $name, reassignTo: $reassignTo) {
    deletedName movedUsers userErrors { code message path }
  }
}
"""
SET_USER_PLAN = """
mutation($userId: ID!, $plan: String!) {
  setUserPlan(userId: $userId, plan: $plan) {
    user { plan quota { limit } } userErrors { code message path }
  }
}
"""
ME = "{ viewer { user { id } } }"
NOTIFICATIONS = """
{ notifications(first: 10) { totalCount edges { node { kind severity message data } } } }
"""
LIVE_NOTIFICATIONS = "subscription { notifications { kind severity data } }"


@pytest.fixture
async def admin(services: Services) -> str:
    return await sign_in(services, Role.ADMIN)


async def user_id(client: httpx.AsyncClient, token: str) -> str:
    found: str = (await gql(client, ME, token))["data"]["viewer"]["user"]["id"]
    return found


async def call(
    client: httpx.AsyncClient, query: str, token: str, field: str, **variables: Any
) -> Any:
    """The `field` of the answer to one operation that must not fail at the top level."""
    body = await gql(client, query, token, **variables)
    assert "errors" not in body, body
    return body["data"][field]


async def test_the_viewer_sees_their_plan_and_where_they_stand(
    client: httpx.AsyncClient, operator: str
) -> None:
    for _ in range(2):
        await gql(client, START, operator)
    viewer = await call(client, VIEWER, operator, "viewer")
    assert viewer["plan"] == {
        "name": "free",
        "displayName": "Free",
        "runsPerDay": 20,
        "maxConcurrent": 2,
        "defaultPriority": "LOW",
        "maxPriority": "NORMAL",
    }
    quota = viewer["quota"]
    assert (quota["runsToday"], quota["limit"], quota["running"], quota["maxConcurrent"]) == (
        2,
        20,
        0,
        2,
    )
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date()
    assert datetime.fromisoformat(quota["resetsAt"]) == datetime.combine(
        tomorrow, datetime.min.time(), UTC
    )


async def test_a_lane_above_the_plan_is_forbidden_at_the_priority(
    client: httpx.AsyncClient, operator: str
) -> None:
    refused = await call(client, START, operator, "startRun", priority="HIGH")
    assert refused["run"] is None
    [error] = refused["userErrors"]
    assert (error["code"], error["path"]) == ("FORBIDDEN", ["input", "priority"])
    allowed = await call(client, START, operator, "startRun", priority="NORMAL")
    assert allowed["run"]["priority"] == "NORMAL"
    default = await call(client, START, operator, "startRun")
    assert default["run"]["priority"] == "LOW"


async def test_administrators_list_users_by_plan_with_their_quota(
    client: httpx.AsyncClient, admin: str, operator: str
) -> None:
    target = await user_id(client, operator)
    moved = await call(client, SET_USER_PLAN, admin, "setUserPlan", userId=target, plan="pro")
    assert moved == {"user": {"plan": "pro", "quota": {"limit": 1000}}, "userErrors": []}
    await gql(client, START, operator)
    found = await call(client, USERS, admin, "users", filter={"plan": "pro"}, first=10)
    assert found["totalCount"] == 1
    [edge] = found["edges"]
    assert edge["node"]["id"] == target
    assert edge["node"]["quota"] == {"runsToday": 1, "limit": 1000}
    admins = await call(client, USERS, admin, "users", filter={"role": "ADMIN"}, first=10)
    assert [e["node"]["role"] for e in admins["edges"]] == ["ADMIN"]


async def test_users_page_on_by_email(client: httpx.AsyncClient, services: Services) -> None:
    admin = await sign_in(services, Role.ADMIN, email="a-admin@example.com")
    for name in ("b", "c", "d"):
        await sign_in(services, email=f"{name}-someone@example.com")
    first = await call(client, USERS, admin, "users", filter={"search": "SOMEONE"}, first=2)
    assert (first["totalCount"], first["pageInfo"]["hasNextPage"]) == (3, True)
    after = first["pageInfo"]["endCursor"]
    rest = await call(
        client, USERS, admin, "users", filter={"search": "someone"}, first=2, after=after
    )
    assert len(first["edges"]) + len(rest["edges"]) == 3
    assert rest["pageInfo"]["hasNextPage"] is False


async def test_another_users_quota_is_hidden_and_admin_lists_are_forbidden(
    client: httpx.AsyncClient, admin: str, operator: str
) -> None:
    admin_id = await user_id(client, admin)
    query = "query($id: ID!) { node(id: $id) { ... on User { quota { limit } } } }"
    assert await call(client, query, operator, "node", id=admin_id) == {"quota": None}
    for listing in ("{ plans { name } }", "{ planUsage { users } }", USERS):
        body = await gql(client, listing, operator, first=1)
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN", listing


async def test_administrators_see_plans_and_usage(
    client: httpx.AsyncClient, admin: str, operator: str
) -> None:
    await gql(client, START, operator)
    plans = await call(client, "{ plans { name runsPerDay } }", admin, "plans")
    assert plans == [
        {"name": "free", "runsPerDay": 20},
        {"name": "pro", "runsPerDay": 1000},
        {"name": "enterprise", "runsPerDay": 100000},
    ]
    usage = await call(
        client, "{ planUsage { plan { name } users runsToday running } }", admin, "planUsage"
    )
    assert usage[0] == {"plan": {"name": "free"}, "users": 2, "runsToday": 1, "running": 0}


async def test_absurd_limits_are_bad_input_at_their_fields(
    client: httpx.AsyncClient, admin: str
) -> None:
    bad = {"name": "Team!", "displayName": "Team", "runsPerDay": -5, "maxConcurrent": 100_000}
    refused = await call(client, CREATE_PLAN, admin, "createPlan", input=bad)
    assert refused["plan"] is None
    assert sorted((e["code"], tuple(e["path"])) for e in refused["userErrors"]) == [
        ("BAD_USER_INPUT", ("input", "maxConcurrent")),
        ("BAD_USER_INPUT", ("input", "name")),
        ("BAD_USER_INPUT", ("input", "runsPerDay")),
    ]
    high_default = {"name": "pro", "defaultPriority": "HIGH", "maxPriority": "LOW"}
    refused = await call(client, UPDATE_PLAN, admin, "updatePlan", input=high_default)
    [error] = refused["userErrors"]
    assert (error["code"], error["path"]) == ("BAD_USER_INPUT", ["input", "defaultPriority"])
    taken = {"name": "pro", "displayName": "Pro", "runsPerDay": 5, "maxConcurrent": 1}
    refused = await call(client, CREATE_PLAN, admin, "createPlan", input=taken)
    assert [(e["code"], e["path"]) for e in refused["userErrors"]] == [
        ("BAD_USER_INPUT", ["input", "name"])
    ]


async def test_unknown_plans_and_plans_in_use(
    client: httpx.AsyncClient, admin: str, operator: str
) -> None:
    target = await user_id(client, operator)
    unknown = await call(client, SET_USER_PLAN, admin, "setUserPlan", userId=target, plan="gold")
    assert [(e["code"], e["path"]) for e in unknown["userErrors"]] == [("BAD_USER_INPUT", ["plan"])]
    missing = await call(client, UPDATE_PLAN, admin, "updatePlan", input={"name": "gold"})
    assert [e["code"] for e in missing["userErrors"]] == ["NOT_FOUND"]
    gone = await call(client, DELETE_PLAN, admin, "deletePlan", name="gold")
    assert [e["code"] for e in gone["userErrors"]] == ["NOT_FOUND"]

    team = {"name": "team", "displayName": "Team", "runsPerDay": 50, "maxConcurrent": 3}
    assert (await call(client, CREATE_PLAN, admin, "createPlan", input=team))["plan"]
    await gql(client, SET_USER_PLAN, admin, userId=target, plan="team")
    in_use = await call(client, DELETE_PLAN, admin, "deletePlan", name="team")
    assert [e["code"] for e in in_use["userErrors"]] == ["CONFLICT"]
    moved = await call(client, DELETE_PLAN, admin, "deletePlan", name="team", reassignTo="pro")
    assert moved == {"deletedName": "team", "movedUsers": 1, "userErrors": []}
    assert (await call(client, VIEWER, operator, "viewer"))["plan"]["name"] == "pro"
    default = await call(client, DELETE_PLAN, admin, "deletePlan", name="free", reassignTo="pro")
    assert [e["code"] for e in default["userErrors"]] == ["CONFLICT"]


async def test_the_eighty_percent_warning_arrives_once_over_the_subscription(
    client: httpx.AsyncClient, app: Litestar, operator: str
) -> None:
    async with served(app) as url, signed_in(url, operator) as ws:
        await subscribe(ws, "1", LIVE_NOTIFICATIONS)
        await asyncio.sleep(0.2)  # the subscription stands before the first start
        for _ in range(20):
            started = await call(client, START, operator, "startRun")
            assert started["userErrors"] == []
        message = await receive(ws)
        assert (message["type"], message["id"]) == ("next", "1")
        warning = message["payload"]["data"]["notifications"]
        assert (warning["kind"], warning["severity"]) == ("quota.warning", "WARNING")
        assert (warning["data"]["runsToday"], warning["data"]["limit"]) == (16, 20)
        with pytest.raises(TimeoutError):
            await receive(ws, within=0.5)
    kept = await call(client, NOTIFICATIONS, operator, "notifications")
    assert kept["totalCount"] == 1
    assert "16 of your 20 runs" in kept["edges"][0]["node"]["message"]
