"""Live runs over a real WebSocket (`graphql-transport-ws`) with a real worker running them."""

import asyncio
import json
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import msgspec
from strawberry import relay
from websockets.asyncio.client import ClientConnection

from api.app import create_app
from domain.identity.models import Role
from infra.bootstrap import Services, build_services
from infra.settings import Settings
from tests.conftest import sign_in
from tests.graphql_client import gql, receive, signed_in, subscribe
from tests.integration.test_runs_api import CANCEL, META, add_logs, start_run
from tests.live import served

RUN_EVENTS = """
subscription($runId: ID!, $afterSeq: Int) {
  runEvents(runId: $runId, afterSeq: $afterSeq) {
    __typename seq at runId
    ... on RunStatusEvent { status attempt message }
    ... on RunProgressEvent { fraction message }
    ... on RunLogEvent { level message }
    ... on RunResultEvent { status result error { type message } }
  }
}
"""
RUNS_UPDATED = """
subscription($filter: RunFilter) { runsUpdated(filter: $filter) { id status taskName } }
"""
# Runs for about 2 s.
COUNT_TO_20 = {"task": "demo.count", "params": {"to": 20, "delayMs": 100}}


async def events_until_complete(ws: ClientConnection, op_id: str) -> list[dict[str, Any]]:
    """The events of one subscription, until the server completes it."""
    events: list[dict[str, Any]] = []
    while (message := await receive(ws))["type"] != "complete":
        assert (message["type"], message["id"]) == ("next", op_id), message
        assert "errors" not in message["payload"], message
        events.append(message["payload"]["data"]["runEvents"])
    return events


async def eventually(condition: Callable[[], bool], within: float = 5.0) -> bool:
    """Whether `condition` holds within `within` seconds, checking every 50 ms."""
    for _ in range(int(within / 0.05)):
        if condition():
            return True
        await asyncio.sleep(0.05)
    return condition()


def assert_whole_count_to_20(events: list[dict[str, Any]]) -> None:
    """Every event of a finished count to 20, each once, in sequence order."""
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    kinds = [e["__typename"] for e in events]
    assert kinds.count("RunProgressEvent") == 20
    assert kinds.count("RunLogEvent") == 20
    fractions = [e["fraction"] for e in events if e["__typename"] == "RunProgressEvent"]
    assert fractions == sorted(fractions)
    assert fractions[-1] == 1.0
    logs = [e["message"] for e in events if e["__typename"] == "RunLogEvent"]
    assert logs == [f"counted {n} of 20" for n in range(1, 21)]
    assert events[-1]["__typename"] == "RunResultEvent"
    assert (events[-1]["status"], events[-1]["result"]) == ("SUCCEEDED", {"count": 20})
    assert kinds.count("RunResultEvent") == 1


async def test_a_count_streams_every_progress_and_log_event_in_order(
    client: httpx.AsyncClient, ws_url: str, operator: str, worker: None
) -> None:
    run_id = await start_run(client, operator, **COUNT_TO_20)
    async with signed_in(ws_url, operator) as ws:
        await subscribe(ws, "1", RUN_EVENTS, runId=run_id)
        events = await events_until_complete(ws, "1")
    assert_whole_count_to_20(events)
    assert {e["runId"] for e in events} == {run_id}
    statuses = [e["status"] for e in events if e["__typename"] == "RunStatusEvent"]
    assert statuses[:2] == ["QUEUED", "RUNNING"]


async def test_a_client_that_reconnects_with_after_seq_misses_nothing(
    client: httpx.AsyncClient, ws_url: str, operator: str, worker: None
) -> None:
    run_id = await start_run(client, operator, **COUNT_TO_20)
    before_drop: list[dict[str, Any]] = []
    async with signed_in(ws_url, operator) as ws:
        await subscribe(ws, "1", RUN_EVENTS, runId=run_id)
        while len(before_drop) < 15:
            before_drop.append((await receive(ws))["payload"]["data"]["runEvents"])
    # The connection dropped mid-run; the client resumes from the last event it got.
    async with signed_in(ws_url, operator) as ws:
        await subscribe(ws, "2", RUN_EVENTS, runId=run_id, afterSeq=before_drop[-1]["seq"])
        after_drop = await events_until_complete(ws, "2")
    assert_whole_count_to_20(before_drop + after_drop)


async def test_a_late_subscriber_gets_the_whole_replay_then_completion(
    client: httpx.AsyncClient, ws_url: str, operator: str, worker: None
) -> None:
    run_id = await start_run(client, operator, **COUNT_TO_20)
    async with signed_in(ws_url, operator) as ws:
        await subscribe(ws, "live", RUN_EVENTS, runId=run_id)
        live = await events_until_complete(ws, "live")
        await subscribe(ws, "late", RUN_EVENTS, runId=run_id)
        late = await events_until_complete(ws, "late")
        await subscribe(ws, "tail", RUN_EVENTS, runId=run_id, afterSeq=live[-2]["seq"])
        tail = await events_until_complete(ws, "tail")
    assert late == live
    assert tail == live[-1:]


async def test_refusals_reach_the_client_as_errors_and_the_socket_stays_open(
    client: httpx.AsyncClient, services: Services, ws_url: str, operator: str
) -> None:
    run_id = await start_run(client, operator)
    other = await sign_in(services, Role.OPERATOR)
    user_id = str(relay.GlobalID("User", str(uuid.uuid4())))
    async with signed_in(ws_url, other) as ws:
        for op_id, variables, code in (
            ("hidden", {"runId": run_id}, "NOT_FOUND"),
            ("wrong-type", {"runId": user_id}, "BAD_USER_INPUT"),
        ):
            await subscribe(ws, op_id, RUN_EVENTS, **variables)
            message = await receive(ws)
            assert (message["type"], message["id"]) == ("next", op_id)
            [error] = message["payload"]["errors"]
            assert error["extensions"]["code"] == code
            assert error["message"]
            assert await receive(ws) == {"id": op_id, "type": "complete"}
        await ws.send(json.dumps({"type": "ping"}))
        assert await receive(ws) == {"type": "pong"}
    async with signed_in(ws_url, operator) as ws:
        await subscribe(ws, "ahead", RUN_EVENTS, runId=run_id, afterSeq=99)
        [error] = (await receive(ws))["payload"]["errors"]
        assert error["extensions"]["code"] == "BAD_USER_INPUT"
        assert error["extensions"]["argumentPath"] == ["afterSeq"]


async def test_a_cancel_reaches_a_live_subscriber_at_once(
    client: httpx.AsyncClient, services: Services, ws_url: str, operator: str
) -> None:
    run_id = await start_run(client, operator)
    async with signed_in(ws_url, operator) as ws:
        await subscribe(ws, "1", RUN_EVENTS, runId=run_id)
        assert (await receive(ws))["payload"]["data"]["runEvents"]["status"] == "QUEUED"
        await gql(client, CANCEL, operator, id=run_id)
        # Well within the stream's periodic re-read of the store, so this is the live path.
        ended = (await receive(ws, within=2.0))["payload"]["data"]["runEvents"]
        assert (ended["__typename"], ended["seq"], ended["status"]) == (
            "RunResultEvent",
            2,
            "CANCELLED",
        )
        assert await receive(ws) == {"id": "1", "type": "complete"}


async def test_each_operation_on_a_socket_reads_runs_afresh(
    client: httpx.AsyncClient, ws_url: str, operator: str
) -> None:
    run_id = await start_run(client, operator)

    async def status(ws: ClientConnection, op_id: str) -> str:
        await subscribe(ws, op_id, "query($id: ID!) { run(id: $id) { status } }", id=run_id)
        found: str = (await receive(ws))["payload"]["data"]["run"]["status"]
        assert await receive(ws) == {"id": op_id, "type": "complete"}
        return found

    async with signed_in(ws_url, operator) as ws:
        assert await status(ws, "before") == "QUEUED"
        await gql(client, CANCEL, operator, id=run_id)
        assert await status(ws, "after") == "CANCELLED"


async def test_runs_updated_follows_status_changes_of_visible_runs_only(
    client: httpx.AsyncClient, services: Services, ws_url: str, operator: str, worker: None
) -> None:
    other = await sign_in(services, Role.OPERATOR)
    async with signed_in(ws_url, operator) as ws:
        await subscribe(ws, "list", RUNS_UPDATED, filter={"task": "demo.count"})
        # The subscription stands once the server listens; give it a moment to get there.
        await asyncio.sleep(0.5)
        await start_run(client, other, task="demo.count", params={"to": 1, "delayMs": 0})
        run_id = await start_run(client, operator, **COUNT_TO_20)
        statuses: list[str] = []
        while not statuses or statuses[-1] != "SUCCEEDED":
            message = await receive(ws)
            update = message["payload"]["data"]["runsUpdated"]
            assert update["id"] == run_id, "only the viewer's own runs are delivered"
            assert update["taskName"] == "demo.count"
            statuses.append(update["status"])
    order = ["QUEUED", "RUNNING", "SUCCEEDED"]
    assert "RUNNING" in statuses
    assert [order.index(s) for s in statuses] == sorted(order.index(s) for s in statuses)


async def test_closing_the_socket_ends_the_servers_live_watches(
    client: httpx.AsyncClient, services: Services, ws_url: str, operator: str
) -> None:
    run_id = await start_run(client, operator)
    async with signed_in(ws_url, operator) as ws:
        await subscribe(ws, "events", RUN_EVENTS, runId=run_id)
        await subscribe(ws, "list", RUNS_UPDATED)
        assert (await receive(ws))["payload"]["data"]["runEvents"]["seq"] == 1
        assert await eventually(lambda: services.bus.watcher_count == 2)
    assert await eventually(lambda: services.bus.watcher_count == 0)


async def test_a_consumer_that_lags_is_told_where_to_resume_and_misses_nothing(
    settings: Settings, database_url: str, redis_url: str, services: Services, operator: str
) -> None:
    small = msgspec.structs.replace(settings, subscription_buffer=10)
    built = build_services(small, database_url=database_url, redis_url=redis_url)
    viewer = await services.identity.authenticate(operator)
    run = await services.runs.start_run(
        viewer=viewer, meta=META, task="demo.count", params={"to": 1}
    )
    run_id = str(relay.GlobalID("Run", str(run.id)))
    try:
        async with served(create_app(small, built)) as url, signed_in(url, operator) as ws:
            await subscribe(ws, "1", RUN_EVENTS, runId=run_id)
            assert (await receive(ws))["payload"]["data"]["runEvents"]["seq"] == 1
            burst = await add_logs(services, run.id, 200)
            # One pipeline, so the server's reader takes the burst faster than it is sent on.
            async with services.redis.pipeline(transaction=False) as pipe:
                for event in burst:
                    pipe.publish(services.bus.events_channel, msgspec.json.encode(event))
                await pipe.execute()
            got: list[int] = [1]
            while "errors" not in (message := await receive(ws))["payload"]:
                got.append(message["payload"]["data"]["runEvents"]["seq"])
            [error] = message["payload"]["errors"]
            assert error["extensions"]["code"] == "UNAVAILABLE"
            assert error["extensions"]["retriable"] is True
            assert error["extensions"]["resumeAfterSeq"] == got[-1]
            await subscribe(ws, "2", RUN_EVENTS, runId=run_id, afterSeq=got[-1])
            await services.runs.cancel_run(viewer=viewer, meta=META, run_id=run.id)
            while (message := await receive(ws))["type"] != "complete" or message["id"] != "2":
                if message["id"] == "2":
                    got.append(message["payload"]["data"]["runEvents"]["seq"])
    finally:
        await built.close()
    assert got == list(range(1, 203))
