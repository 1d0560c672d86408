"""Moves of a run between statuses; each changes the run and returns the event that reports it.

The events come without sequence numbers: the event store gives them theirs on append.
"""

import uuid
from datetime import datetime, timedelta
from typing import Any

from domain.runs.inputs import StartRequest
from domain.runs.models import (
    AttemptOutcome,
    EventKind,
    LogLevel,
    Run,
    RunAttempt,
    RunError,
    RunEvent,
    RunStatus,
    Task,
)
from domain.runs.policy import RunPolicy
from domain.runs.rules import retry_message, status_after_failure

HANDED_BACK = "handed back: worker shutting down"
CANCEL_REQUESTED = "cancel requested"


def status_event(
    run: Run, at: datetime, *, message: str | None = None, error: RunError | None = None
) -> RunEvent:
    """A STATUS event with the run's current status and attempt."""
    return RunEvent(
        run_id=run.id,
        seq=0,
        at=at,
        kind=EventKind.STATUS,
        status=run.status,
        attempt=run.attempt,
        message=message,
        error=error,
    )


def progress_event(run: Run, at: datetime) -> RunEvent:
    """A PROGRESS event with the run's latest progress."""
    return RunEvent(
        run_id=run.id,
        seq=0,
        at=at,
        kind=EventKind.PROGRESS,
        fraction=run.progress,
        message=run.progress_message,
    )


def log_event(run: Run, at: datetime, level: LogLevel, message: str) -> RunEvent:
    """A LOG event."""
    return RunEvent(run_id=run.id, seq=0, at=at, kind=EventKind.LOG, level=level, message=message)


def new_run(
    task: Task,
    request: StartRequest,
    *,
    created_by: uuid.UUID | None,
    now: datetime,
    policy: RunPolicy,
) -> Run:
    """A QUEUED run of `task` with the task's defaults, held within the policy's bounds."""
    defaults = task.defaults
    return Run(
        id=uuid.uuid4(),
        task_name=task.name,
        params=request.params_or_empty,
        status=RunStatus.QUEUED,
        priority=request.priority or defaults.priority,
        created_by=created_by,
        created_at=now,
        max_attempts=max(1, min(defaults.max_attempts, policy.max_attempts)),
        timeout_seconds=min(defaults.timeout_seconds, policy.max_timeout_seconds),
        backoff_seconds=min(defaults.backoff_seconds, policy.max_backoff_seconds),
        idempotency_key=request.idempotency_key,
        retry_of=request.retry_of,
    )


def start_attempt(run: Run, worker_id: str, now: datetime) -> tuple[RunAttempt, RunEvent]:
    """QUEUED to RUNNING: the next attempt begins on `worker_id`."""
    run.status = RunStatus.RUNNING
    run.attempt += 1
    run.worker_id = worker_id
    run.not_before = None
    run.started_at = run.started_at or now
    attempt = RunAttempt(run_id=run.id, number=run.attempt, worker_id=worker_id, started_at=now)
    return attempt, status_event(run, now)


def end_attempt(
    attempt: RunAttempt, outcome: AttemptOutcome, now: datetime, error: RunError | None = None
) -> None:
    """Record how an attempt ended."""
    attempt.finished_at = now
    attempt.outcome = outcome
    attempt.error = error


def finish(
    run: Run, status: RunStatus, now: datetime, *, result: Any = None, error: RunError | None = None
) -> RunEvent:
    """To a final status; the RESULT event that ends the run's stream."""
    run.status = status
    run.finished_at = now
    run.worker_id = None
    run.result = result
    run.error = error
    return RunEvent(
        run_id=run.id,
        seq=0,
        at=now,
        kind=EventKind.RESULT,
        status=status,
        attempt=run.attempt,
        result=result,
        error=error,
    )


def queue_retry(run: Run, now: datetime, delay: float, error: RunError) -> RunEvent:
    """RUNNING to QUEUED after a failed attempt, not to start again for `delay` seconds."""
    run.status = RunStatus.QUEUED
    run.worker_id = None
    run.not_before = now + timedelta(seconds=delay)
    run.error = error
    return status_event(run, now, message=retry_message(delay), error=error)


def after_failure(
    run: Run, now: datetime, *, failed: RunStatus, error: RunError, retriable: bool, delay: float
) -> RunEvent:
    """After a failed attempt: QUEUED again in `delay` seconds, or ended (see the rules)."""
    status = status_after_failure(run, failed=failed, retriable=retriable)
    if status is RunStatus.QUEUED:
        return queue_retry(run, now, delay, error)
    # A cancelled run ended because someone asked, not because of the attempt's error.
    return finish(run, status, now, error=None if status is RunStatus.CANCELLED else error)


def hand_back(run: Run, now: datetime) -> RunEvent:
    """RUNNING to QUEUED, unharmed, because its worker is shutting down."""
    run.status = RunStatus.QUEUED
    run.worker_id = None
    return status_event(run, now, message=HANDED_BACK)


def cancel(run: Run, now: datetime) -> list[RunEvent]:
    """End a QUEUED run now, or mark a RUNNING one for its worker to stop.

    No event when a cancel was already requested: asking twice changes nothing.
    """
    if run.cancel_requested_at is not None and run.status is RunStatus.RUNNING:
        return []
    run.cancel_requested_at = now
    if run.status is RunStatus.QUEUED:
        return [finish(run, RunStatus.CANCELLED, now)]
    return [status_event(run, now, message=CANCEL_REQUESTED)]
