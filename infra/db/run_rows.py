"""Rows of the run tables turned into domain objects and back, jsonb included."""

from typing import Any

from sqlalchemy import Row

from domain.runs.models import (
    AttemptOutcome,
    EventKind,
    LogLevel,
    Priority,
    Run,
    RunAttempt,
    RunError,
    RunEvent,
    RunStatus,
    Task,
    TaskDefaults,
)


def task_values(task: Task) -> dict[str, Any]:
    """Column values of a task."""
    return {
        "name": task.name,
        "description": task.description,
        "params_schema": task.params_schema,
        "timeout_seconds": task.defaults.timeout_seconds,
        "max_attempts": task.defaults.max_attempts,
        "backoff_seconds": task.defaults.backoff_seconds,
        "priority": task.defaults.priority.value,
        "registered_at": task.registered_at,
    }


def task_of(row: Row[Any]) -> Task:
    """The task a `tasks` row holds."""
    defaults = TaskDefaults(
        timeout_seconds=row.timeout_seconds,
        max_attempts=row.max_attempts,
        backoff_seconds=row.backoff_seconds,
        priority=Priority(row.priority),
    )
    return Task(row.name, row.description, row.params_schema, defaults, row.registered_at)


def error_json(error: RunError | None) -> dict[str, Any] | None:
    """An error as a jsonb object."""
    if error is None:
        return None
    return {"type": error.type, "message": error.message, "traceback": error.traceback}


def error_of(data: dict[str, Any] | None) -> RunError | None:
    """The error a jsonb object holds."""
    if data is None:
        return None
    return RunError(data["type"], data["message"], data.get("traceback"))


def run_values(run: Run) -> dict[str, Any]:
    """Column values of a run, `last_seq` included (an update leaves that one out)."""
    return {
        "id": run.id,
        "task_name": run.task_name,
        "params": run.params,
        "status": run.status.value,
        "priority": run.priority.value,
        "created_by": run.created_by,
        "created_at": run.created_at,
        "max_attempts": run.max_attempts,
        "timeout_seconds": run.timeout_seconds,
        "backoff_seconds": run.backoff_seconds,
        "idempotency_key": run.idempotency_key,
        "retry_of": run.retry_of,
        "attempt": run.attempt,
        "not_before": run.not_before,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "cancel_requested_at": run.cancel_requested_at,
        "progress": run.progress,
        "progress_message": run.progress_message,
        "result": run.result,
        "error": error_json(run.error),
        "last_seq": run.last_seq,
        "worker_id": run.worker_id,
    }


def run_of(row: Row[Any]) -> Run:
    """The run a `runs` row holds."""
    return Run(
        id=row.id,
        task_name=row.task_name,
        params=row.params,
        status=RunStatus(row.status),
        priority=Priority(row.priority),
        created_by=row.created_by,
        created_at=row.created_at,
        max_attempts=row.max_attempts,
        timeout_seconds=row.timeout_seconds,
        backoff_seconds=row.backoff_seconds,
        idempotency_key=row.idempotency_key,
        retry_of=row.retry_of,
        attempt=row.attempt,
        not_before=row.not_before,
        started_at=row.started_at,
        finished_at=row.finished_at,
        cancel_requested_at=row.cancel_requested_at,
        progress=row.progress,
        progress_message=row.progress_message,
        result=row.result,
        error=error_of(row.error),
        last_seq=row.last_seq,
        worker_id=row.worker_id,
    )


def attempt_values(attempt: RunAttempt) -> dict[str, Any]:
    """Column values of an attempt."""
    return {
        "run_id": attempt.run_id,
        "number": attempt.number,
        "worker_id": attempt.worker_id,
        "started_at": attempt.started_at,
        "finished_at": attempt.finished_at,
        "outcome": attempt.outcome.value if attempt.outcome else None,
        "error": error_json(attempt.error),
    }


def attempt_of(row: Row[Any]) -> RunAttempt:
    """The attempt a `run_attempts` row holds."""
    return RunAttempt(
        run_id=row.run_id,
        number=row.number,
        worker_id=row.worker_id,
        started_at=row.started_at,
        finished_at=row.finished_at,
        outcome=AttemptOutcome(row.outcome) if row.outcome else None,
        error=error_of(row.error),
    )


def event_data(event: RunEvent) -> dict[str, Any]:
    """The fields of an event that its kind uses, as a jsonb object without nulls."""
    data = {
        "status": event.status.value if event.status else None,
        "attempt": event.attempt,
        "fraction": event.fraction,
        "level": event.level.value if event.level else None,
        "message": event.message,
        "result": event.result,
        "error": error_json(event.error),
    }
    return {name: value for name, value in data.items() if value is not None}


def event_of(row: Row[Any]) -> RunEvent:
    """The event a `run_events` row holds."""
    data: dict[str, Any] = row.data
    status, level = data.get("status"), data.get("level")
    return RunEvent(
        run_id=row.run_id,
        seq=row.seq,
        at=row.at,
        kind=EventKind(row.kind),
        status=RunStatus(status) if status else None,
        attempt=data.get("attempt"),
        fraction=data.get("fraction"),
        level=LogLevel(level) if level else None,
        message=data.get("message"),
        result=data.get("result"),
        error=error_of(data.get("error")),
    )
