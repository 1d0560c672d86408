"""GraphQL views of what happens to a run: its events, log lines and errors."""

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any, Self, TypeVar

import strawberry
from strawberry import relay
from strawberry.scalars import JSON

from api.connections import Connection
from api.context import Info
from api.runs import enums  # noqa: F401 - registers the enums these types use
from domain.runs import models

RUN_TYPE = "Run"
V = TypeVar("V")


def run_global_id(run_id: uuid.UUID) -> relay.GlobalID:
    """The global ID of the run with `run_id`."""
    return relay.GlobalID(RUN_TYPE, str(run_id))


def _required(value: V | None) -> V:
    # The event's kind promises the field; a missing one is a bug, not something to paper over.
    if value is None:
        raise ValueError("a run event lacks a field its kind requires")
    return value


@strawberry.type(description="Why an attempt or a run failed.")
class RunError:
    type: str = strawberry.field(description='A machine-readable kind, e.g. "WORKER_LOST".')
    message: str = strawberry.field(description="What went wrong, for people.")
    domain: strawberry.Private[models.RunError]

    @classmethod
    def from_domain(cls, error: models.RunError) -> Self:
        """View of a domain run error."""
        return cls(type=error.type, message=error.message, domain=error)

    @strawberry.field(description="Where it failed; shown to administrators only.")
    def traceback(self, info: Info) -> str | None:
        viewer = info.context.viewer
        return self.domain.traceback if viewer is not None and viewer.is_admin else None


def error_view(error: models.RunError | None) -> RunError | None:
    """View of an optional domain run error."""
    return RunError.from_domain(error) if error is not None else None


@strawberry.type(description="One line a run logged.")
class RunLogLine:
    seq: int = strawberry.field(description="The line's place in the run's event stream.")
    at: datetime = strawberry.field(description="When it was logged.")
    level: models.LogLevel
    message: str = strawberry.field(description="The line, cut to the platform's limit.")

    @classmethod
    def from_domain(cls, event: models.RunEvent) -> Self:
        """View of a domain LOG event."""
        return cls(
            seq=event.seq,
            at=event.at,
            level=_required(event.level),
            message=_required(event.message),
        )


@strawberry.interface(description="One entry of a run's ordered event stream.")
class RunEvent:
    seq: int = strawberry.field(description="Counts from 1 per run, without gaps.")
    at: datetime = strawberry.field(description="When it happened.")
    run_id: relay.GlobalID = strawberry.field(description="The ID of the run.")


@strawberry.type(description="The run changed status: it started, was retried or ended.")
class RunStatusEvent(RunEvent):
    status: models.RunStatus = strawberry.field(description="The run's new status.")
    attempt: int | None = strawberry.field(description="The attempt the change concerns.")
    message: str | None = strawberry.field(description="Why, in words, when there is a reason.")
    error: RunError | None = strawberry.field(description="The failure of a retried attempt.")


@strawberry.type(description="The run reported how far it got.")
class RunProgressEvent(RunEvent):
    fraction: float = strawberry.field(description="From 0 to 1.")
    message: str | None = strawberry.field(description="What the run is doing, in words.")


@strawberry.type(description="The run logged a line.")
class RunLogEvent(RunEvent):
    level: models.LogLevel
    # Nullable only so that one query may select `message` on every kind of event: GraphQL
    # refuses fields of one name with different nullability side by side.
    message: str | None = strawberry.field(
        description="The line, cut to the platform's limit; always set."
    )


@strawberry.type(description="The run ended; always its last event.")
class RunResultEvent(RunEvent):
    status: models.RunStatus = strawberry.field(description="The run's final status.")
    result: JSON | None = strawberry.field(description="What the task returned, if it succeeded.")
    error: RunError | None = strawberry.field(description="Why the run failed, if it did.")


def _common(event: models.RunEvent) -> dict[str, Any]:
    """The fields every event view shares."""
    return {"seq": event.seq, "at": event.at, "run_id": run_global_id(event.run_id)}


def _status(event: models.RunEvent) -> RunEvent:
    return RunStatusEvent(
        **_common(event),
        status=_required(event.status),
        attempt=event.attempt,
        message=event.message,
        error=error_view(event.error),
    )


def _progress(event: models.RunEvent) -> RunEvent:
    return RunProgressEvent(
        **_common(event),
        fraction=_required(event.fraction),
        message=event.message,
    )


def _log(event: models.RunEvent) -> RunEvent:
    line = RunLogLine.from_domain(event)
    return RunLogEvent(
        **_common(event),
        level=line.level,
        message=line.message,
    )


def _result(event: models.RunEvent) -> RunEvent:
    return RunResultEvent(
        **_common(event),
        status=_required(event.status),
        result=event.result,
        error=error_view(event.error),
    )


_VIEWS: dict[models.EventKind, Callable[[models.RunEvent], RunEvent]] = {
    models.EventKind.STATUS: _status,
    models.EventKind.PROGRESS: _progress,
    models.EventKind.LOG: _log,
    models.EventKind.RESULT: _result,
}

# Every concrete event type, for the schema: fields typed by the interface do not name them.
EVENT_TYPES = (RunStatusEvent, RunProgressEvent, RunLogEvent, RunResultEvent)


def event_view(event: models.RunEvent) -> RunEvent:
    """The concrete GraphQL view of a domain event, by its kind."""
    return _VIEWS[event.kind](event)


@strawberry.type(name="RunLogConnection", description="A page of a run's log lines, oldest first.")
class RunLogConnection(Connection[RunLogLine]):
    pass


@strawberry.type(
    name="RunEventConnection", description="A page of a run's events, in sequence order."
)
class RunEventConnection(Connection[RunEvent]):
    pass
