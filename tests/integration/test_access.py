"""Every role against every mutation, through HTTP, and the audit trail they leave."""

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

import graphql
import httpx
import pytest
from strawberry import relay

from api.paging import encode_cursor
from api.schema import build_schema
from domain.identity.models import RequestMeta, Role
from infra.bootstrap import Services
from infra.settings import Settings
from tests.conftest import register_tasks

PASSWORD = "correct horse battery staple"
META = RequestMeta(ip="127.0.0.1", request_id="test-setup")
ROLES = ("anonymous", "viewer", "operator", "admin")


@dataclass
class Caller:
    """A signed-in (or anonymous) client for one role."""

    http: httpx.AsyncClient
    services: Services
    headers: dict[str, str]
    refresh_token: str | None = None
    session_id: str | None = None

    async def gql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        response = await self.http.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=self.headers
        )
        body: dict[str, Any] = response.json()
        return body


SIGN_IN = """
mutation($email: String!, $password: String!) {
  login(input: {email: $email, password: $password}) {
    accessToken refreshToken viewer { sessions { id current } }
    userErrors { code message path }
  }
}
"""


async def _caller(
    client: httpx.AsyncClient, services: Services, role: str, email: str | None = None
) -> Caller:
    if role == "anonymous":
        return Caller(client, services, {})
    email = email or f"{role}@example.com"
    await services.identity.create_user(
        actor=None, meta=META, email=email, password=PASSWORD, role=Role(role)
    )
    body = await Caller(client, services, {}).gql(SIGN_IN, {"email": email, "password": PASSWORD})
    payload = body["data"]["login"]
    current = next(s["id"] for s in payload["viewer"]["sessions"] if s["current"])
    return Caller(
        client,
        services,
        {"Authorization": f"Bearer {payload['accessToken']}"},
        refresh_token=payload["refreshToken"],
        session_id=current,
    )


def _outcome(body: dict[str, Any], field: str) -> str:
    """OK, a userError code, or a top-level error code."""
    if body.get("errors"):
        return str(body["errors"][0]["extensions"]["code"])
    errors = body["data"][field]["userErrors"]
    return str(errors[0]["code"]) if errors else "OK"


Action = Callable[[Caller], Awaitable[tuple[dict[str, Any], str]]]


async def system_ping(c: Caller) -> tuple[dict[str, Any], str]:
    query = "mutation { systemPing { reply { message } userErrors { code } } }"
    return await c.gql(query), "systemPing"


async def logout(c: Caller) -> tuple[dict[str, Any], str]:
    return await c.gql("mutation { logout { session { id } userErrors { code } } }"), "logout"


async def revoke_session(c: Caller) -> tuple[dict[str, Any], str]:
    query = "mutation($id: ID!) { revokeSession(id: $id) { session { id } userErrors { code } } }"
    target = c.session_id or "U2Vzc2lvbjow"
    return await c.gql(query, {"id": target}), "revokeSession"


async def revoke_other_sessions(c: Caller) -> tuple[dict[str, Any], str]:
    query = "mutation { revokeOtherSessions { revokedCount userErrors { code } } }"
    return await c.gql(query), "revokeOtherSessions"


async def create_read_token(c: Caller) -> tuple[dict[str, Any], str]:
    query = """mutation { createApiToken(input: {name: "ci", scopes: [READ]}) {
      token { id } secret userErrors { code } } }"""
    return await c.gql(query), "createApiToken"


async def create_write_token(c: Caller) -> tuple[dict[str, Any], str]:
    query = """mutation { createApiToken(input: {name: "ci", scopes: [WRITE]}) {
      token { id } secret userErrors { code } } }"""
    return await c.gql(query), "createApiToken"


async def revoke_own_token(c: Caller) -> tuple[dict[str, Any], str]:
    made, _ = await create_read_token(c)
    token = (made.get("data") or {}).get("createApiToken", {}).get("token") or {}
    query = "mutation($id: ID!) { revokeApiToken(id: $id) { token { id } userErrors { code } } }"
    return await c.gql(query, {"id": token.get("id", "QXBpVG9rZW46MA==")}), "revokeApiToken"


async def create_user(c: Caller) -> tuple[dict[str, Any], str]:
    query = """mutation { createUser(input: {email: "new@example.com",
      password: "another long password", role: OPERATOR}) { user { id } userErrors { code } } }"""
    return await c.gql(query), "createUser"


async def refresh_session(c: Caller) -> tuple[dict[str, Any], str]:
    query = """mutation($t: String!) { refreshSession(input: {refreshToken: $t}) {
      accessToken userErrors { code } } }"""
    return await c.gql(query, {"t": c.refresh_token or "tkr_unknown"}), "refreshSession"


async def login(c: Caller) -> tuple[dict[str, Any], str]:
    wrong = {"email": "admin@example.com", "password": "wrong" * 3}
    return await replace(c, headers={}).gql(SIGN_IN, wrong), "login"


START_RUN = """mutation { startRun(input: {task: "demo.count", params: {to: 1, delayMs: 0}}) {
  run { id } userErrors { code } } }"""
CANCEL_RUN = "mutation($id: ID!) { cancelRun(id: $id) { run { id } userErrors { code } } }"
RETRY_RUN = "mutation($id: ID!) { retryRun(id: $id) { run { id } userErrors { code } } }"


async def start_run(c: Caller) -> tuple[dict[str, Any], str]:
    await register_tasks(c.services)
    return await c.gql(START_RUN), "startRun"


async def _run_id(c: Caller, *, ended: bool) -> str:
    """A run the caller started (cancelled while queued if `ended`), or a made-up ID."""
    started, _ = await start_run(c)
    run = ((started.get("data") or {}).get("startRun") or {}).get("run")
    if run is None:
        return str(relay.GlobalID("Run", str(uuid.uuid4())))
    if ended:
        await c.gql(CANCEL_RUN, {"id": run["id"]})
    return str(run["id"])


async def _others_run_id(c: Caller, *, ended: bool) -> str:
    owner = await _caller(c.http, c.services, "operator", email="owner@example.com")
    return await _run_id(owner, ended=ended)


async def cancel_own_run(c: Caller) -> tuple[dict[str, Any], str]:
    return await c.gql(CANCEL_RUN, {"id": await _run_id(c, ended=False)}), "cancelRun"


async def cancel_others_run(c: Caller) -> tuple[dict[str, Any], str]:
    return await c.gql(CANCEL_RUN, {"id": await _others_run_id(c, ended=False)}), "cancelRun"


async def retry_own_run(c: Caller) -> tuple[dict[str, Any], str]:
    return await c.gql(RETRY_RUN, {"id": await _run_id(c, ended=True)}), "retryRun"


async def retry_others_run(c: Caller) -> tuple[dict[str, Any], str]:
    return await c.gql(RETRY_RUN, {"id": await _others_run_id(c, ended=True)}), "retryRun"


CREATE_PLAN = """mutation { createPlan(input: {name: "team", displayName: "Team",
  runsPerDay: 100, maxConcurrent: 5}) { plan { name } userErrors { code } } }"""
UPDATE_PLAN = """mutation { updatePlan(input: {name: "pro", runsPerDay: 2000}) {
  plan { name } userErrors { code } } }"""
# enterprise is built in and has no users, so an administrator may delete it outright.
DELETE_PLAN = """mutation { deletePlan(name: "enterprise") { deletedName userErrors { code } } }"""
SET_USER_PLAN = """mutation($id: ID!) { setUserPlan(userId: $id, plan: "pro") {
  user { plan } userErrors { code } } }"""


async def create_plan(c: Caller) -> tuple[dict[str, Any], str]:
    return await c.gql(CREATE_PLAN), "createPlan"


async def update_plan(c: Caller) -> tuple[dict[str, Any], str]:
    return await c.gql(UPDATE_PLAN), "updatePlan"


async def delete_plan(c: Caller) -> tuple[dict[str, Any], str]:
    return await c.gql(DELETE_PLAN), "deletePlan"


async def set_own_plan(c: Caller) -> tuple[dict[str, Any], str]:
    me = (await c.gql("{ viewer { user { id } } }")).get("data") or {}
    user_id = (me.get("viewer") or {}).get("user", {}).get("id")
    target = user_id or str(relay.GlobalID("User", str(uuid.uuid4())))
    return await c.gql(SET_USER_PLAN, {"id": target}), "setUserPlan"


# Expected outcome per role: anonymous, viewer, operator, admin.
MATRIX: dict[str, tuple[Action, tuple[str, str, str, str]]] = {
    "systemPing": (system_ping, ("UNAUTHENTICATED", "FORBIDDEN", "UNAVAILABLE", "UNAVAILABLE")),
    "logout": (logout, ("UNAUTHENTICATED", "OK", "OK", "OK")),
    "revokeSession": (revoke_session, ("UNAUTHENTICATED", "OK", "OK", "OK")),
    "revokeOtherSessions": (revoke_other_sessions, ("UNAUTHENTICATED", "OK", "OK", "OK")),
    "createApiToken(read)": (create_read_token, ("UNAUTHENTICATED", "OK", "OK", "OK")),
    "createApiToken(write)": (create_write_token, ("UNAUTHENTICATED", "FORBIDDEN", "OK", "OK")),
    "revokeApiToken": (revoke_own_token, ("UNAUTHENTICATED", "OK", "OK", "OK")),
    "createUser": (create_user, ("UNAUTHENTICATED", "FORBIDDEN", "FORBIDDEN", "OK")),
    "refreshSession": (refresh_session, ("UNAUTHENTICATED", "OK", "OK", "OK")),
    "login(wrong password)": (login, ("UNAUTHENTICATED",) * 4),
    "startRun": (start_run, ("UNAUTHENTICATED", "FORBIDDEN", "OK", "OK")),
    "cancelRun(own)": (cancel_own_run, ("UNAUTHENTICATED", "FORBIDDEN", "OK", "OK")),
    # Another's run is NOT_FOUND, as if it did not exist; a viewer lacks WRITE for any run.
    "cancelRun(other's)": (cancel_others_run, ("UNAUTHENTICATED", "FORBIDDEN", "NOT_FOUND", "OK")),
    "retryRun(own)": (retry_own_run, ("UNAUTHENTICATED", "FORBIDDEN", "OK", "OK")),
    "retryRun(other's)": (retry_others_run, ("UNAUTHENTICATED", "FORBIDDEN", "NOT_FOUND", "OK")),
    "createPlan": (create_plan, ("UNAUTHENTICATED", "FORBIDDEN", "FORBIDDEN", "OK")),
    "updatePlan": (update_plan, ("UNAUTHENTICATED", "FORBIDDEN", "FORBIDDEN", "OK")),
    "deletePlan": (delete_plan, ("UNAUTHENTICATED", "FORBIDDEN", "FORBIDDEN", "OK")),
    "setUserPlan(own)": (set_own_plan, ("UNAUTHENTICATED", "FORBIDDEN", "FORBIDDEN", "OK")),
}


def test_the_matrix_covers_every_mutation_of_the_schema(settings: Settings) -> None:
    schema = graphql.build_schema(build_schema(settings).as_str())
    assert schema.mutation_type is not None
    covered = {row.partition("(")[0] for row in MATRIX}
    assert covered == set(schema.mutation_type.fields)


@pytest.fixture
def settings(database_url: str, redis_url: str) -> Settings:
    # No worker runs here: a permitted ping gets as far as the queue and times out quickly.
    return Settings(
        env="test",
        database_url=database_url,
        redis_url=redis_url,
        secret_key="k" * 40,
        ping_timeout=0.2,
    )


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("mutation", list(MATRIX))
async def test_role_against_mutation(
    client: httpx.AsyncClient, services: Services, mutation: str, role: str
) -> None:
    action, expected = MATRIX[mutation]
    caller = await _caller(client, services, role)
    body, field = await action(caller)
    assert _outcome(body, field) == expected[ROLES.index(role)], body


AUDIT = """
query($action: String) {
  auditLog(first: 10, filter: {action: $action}) {
    totalCount
    edges { node { action outcome reason ip requestId targetType actor { displayName } } }
  }
}
"""


async def test_audit_trail_has_allowed_and_refused_attempts(
    client: httpx.AsyncClient, services: Services
) -> None:
    admin = await _caller(client, services, "admin")
    operator = await _caller(client, services, "operator")
    await create_user(operator)
    await create_user(admin)
    await create_user(await _caller(client, services, "anonymous"))
    body = await admin.gql(AUDIT, {"action": "user.create"})
    nodes = [e["node"] for e in body["data"]["auditLog"]["edges"]]
    seen = {(n["actor"]["displayName"] if n["actor"] else None, n["outcome"]) for n in nodes}
    assert seen >= {("operator", "REFUSED"), ("admin", "ALLOWED"), (None, "REFUSED")}
    assert all(n["requestId"] for n in nodes)
    assert all(n["ip"] for n in nodes)
    assert all(n["targetType"] == "User" for n in nodes)


AUDIT_PAGE = """
query($first: Int!, $after: String) {
  auditLog(first: $first, after: $after, filter: {action: "user.create"}) {
    totalCount
    edges { cursor node { id } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}
"""


async def test_audit_log_pages_with_the_page_info_of_every_list(
    client: httpx.AsyncClient, services: Services
) -> None:
    admin = await _caller(client, services, "admin")
    for _ in range(3):
        await create_user(await _caller(client, services, "anonymous"))
    seen: list[str] = []
    after = None
    while True:
        body = await admin.gql(AUDIT_PAGE, {"first": 2, "after": after})
        page = body["data"]["auditLog"]
        cursors = [edge["cursor"] for edge in page["edges"]]
        info = page["pageInfo"]
        assert (info["startCursor"], info["endCursor"]) == (cursors[0], cursors[-1])
        if after is None:
            assert info["hasPreviousPage"] is False
        seen += [edge["node"]["id"] for edge in page["edges"]]
        if not info["hasNextPage"]:
            break
        after = info["endCursor"]
    assert len(seen) == len(set(seen)) == page["totalCount"] >= 3
    runs_cursor = encode_cursor("Run", "2026-01-01T00:00:00+00:00|x")
    refused = await admin.gql(AUDIT_PAGE, {"first": 2, "after": runs_cursor})
    assert refused["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert refused["errors"][0]["extensions"]["argumentPath"] == ["after"]


async def test_audit_log_is_for_admins_only(client: httpx.AsyncClient, services: Services) -> None:
    operator = await _caller(client, services, "operator")
    body = await operator.gql(AUDIT, {"action": None})
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert body["data"] is None


async def test_email_is_visible_to_its_owner_and_admins_only(
    client: httpx.AsyncClient, services: Services
) -> None:
    admin = await _caller(client, services, "admin")
    viewer = await _caller(client, services, "viewer")
    me = await viewer.gql("{ viewer { user { id email } } }")
    user = me["data"]["viewer"]["user"]
    assert user["email"] == "viewer@example.com"
    query = "query($id: ID!) { node(id: $id) { ... on User { email displayName } } }"
    by_admin = await admin.gql(query, {"id": user["id"]})
    assert by_admin["data"]["node"]["email"] == "viewer@example.com"
    admin_id = (await admin.gql("{ viewer { user { id } } }"))["data"]["viewer"]["user"]["id"]
    by_viewer = await viewer.gql(query, {"id": admin_id})
    assert by_viewer["data"]["node"] == {"email": None, "displayName": "admin"}


async def test_node_never_crosses_types_or_owners(
    client: httpx.AsyncClient, services: Services
) -> None:
    ada = await _caller(client, services, "operator")
    bob = await _caller(client, services, "viewer")
    query = "query($id: ID!) { node(id: $id) { __typename id } }"
    own = await ada.gql(query, {"id": ada.session_id})
    assert own["data"]["node"]["__typename"] == "Session"
    assert (await bob.gql(query, {"id": ada.session_id}))["data"]["node"] is None
    user_id = (await ada.gql("{ viewer { user { id } } }"))["data"]["viewer"]["user"]["id"]
    import base64

    raw_user = base64.b64decode(user_id).decode().split(":", 1)[1]
    as_session = base64.b64encode(f"Session:{raw_user}".encode()).decode()
    assert (await ada.gql(query, {"id": as_session}))["data"]["node"] is None
    as_token = base64.b64encode(f"ApiToken:{raw_user}".encode()).decode()
    assert (await ada.gql(query, {"id": as_token}))["data"]["node"] is None


async def test_a_bad_token_refuses_the_whole_request_with_401(client: httpx.AsyncClient) -> None:
    for token in ("not-a-jwt", "eyJhbGciOiJIUzI1NiJ9.e30.c2ln", "tky_unknown"):
        response = await client.post(
            "/graphql", json={"query": "{ version }"}, headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == 401
        assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        assert "data" not in response.json()


async def test_over_the_rate_limit_is_429_with_headers(make_client: Any) -> None:
    async with make_client(anonymous_rate_limit_per_minute=3) as http:
        responses = [await http.post("/graphql", json={"query": "{ version }"}) for _ in range(4)]
    assert [r.status_code for r in responses] == [200, 200, 200, 429]
    assert [r.headers["x-ratelimit-remaining"] for r in responses[:3]] == ["2", "1", "0"]
    refused = responses[-1]
    assert refused.headers["x-ratelimit-limit"] == "3"
    assert int(refused.headers["retry-after"]) >= 1
    error = refused.json()["errors"][0]
    assert error["extensions"]["code"] == "RATE_LIMITED"
    assert error["extensions"]["retryAfter"] > 0


async def test_viewer_sees_its_rate_limit(client: httpx.AsyncClient, services: Services) -> None:
    caller = await _caller(client, services, "operator")
    body = await caller.gql("{ viewer { rateLimit { limit remaining resetAt } } }")
    budget = body["data"]["viewer"]["rateLimit"]
    assert budget["limit"] == 600
    assert 0 <= budget["remaining"] < 600


async def test_a_revoked_api_token_stops_working_at_once(
    client: httpx.AsyncClient, services: Services
) -> None:
    caller = await _caller(client, services, "operator")
    made, _ = await create_read_token(caller)
    token = made["data"]["createApiToken"]
    with_token = Caller(client, services, {"Authorization": f"Bearer {token['secret']}"})
    me = await with_token.gql("{ viewer { scopes user { displayName } } }")
    assert me["data"]["viewer"]["scopes"] == ["READ"]
    query = "mutation($id: ID!) { revokeApiToken(id: $id) { userErrors { code } } }"
    await caller.gql(query, {"id": token["token"]["id"]})
    response = await client.post(
        "/graphql", json={"query": "{ version }"}, headers=with_token.headers
    )
    assert response.status_code == 401


async def test_refresh_token_reuse_revokes_the_session(
    client: httpx.AsyncClient, services: Services
) -> None:
    caller = await _caller(client, services, "viewer")
    query = """mutation($t: String!) { refreshSession(input: {refreshToken: $t}) {
      accessToken refreshToken userErrors { code } } }"""
    first = (await caller.gql(query, {"t": caller.refresh_token}))["data"]["refreshSession"]
    assert first["userErrors"] == []
    reused = (await caller.gql(query, {"t": caller.refresh_token}))["data"]["refreshSession"]
    assert reused["userErrors"][0]["code"] == "UNAUTHENTICATED"
    newer = {"Authorization": f"Bearer {first['accessToken']}"}
    response = await client.post("/graphql", json={"query": "{ version }"}, headers=newer)
    assert response.status_code == 401
