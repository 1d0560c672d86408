"""Rules about runs that need no I/O: lanes, who may see and change a run, back-off, bounds."""

import json
import math
import uuid
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from domain.errors import Conflict, NotFound
from domain.identity.models import Scope, Viewer
from domain.identity.rules import may_manage, require_scope
from domain.runs.models import (
    Priority,
    Run,
    RunError,
    RunEvent,
    RunFilter,
    RunStatus,
    RunUpdate,
)
from domain.runs.policy import RunPolicy

# The arq function that executes a run; its job ID is the run's ID.
RUN_JOB = "run"

# The queue is polled in score order and a run's score is its start time minus its lane's
# head start. A higher lane therefore goes first among runs started at about the same time,
# yet a LOW run that has waited five minutes beats a HIGH run started now: waiting ages a run
# into the higher lanes, so no lane starves outright.
LANE_HEAD_START_SECONDS: dict[Priority, float] = {
    Priority.HIGH: 300.0,
    Priority.NORMAL: 60.0,
    Priority.LOW: 0.0,
}

# The same words for a run that does not exist and one the viewer may not see, so that
# a refusal never tells whether a run exists.
RUN_NOT_FOUND = "no run with this ID"
LOG_LIMIT_NOTICE = "log limit reached; later lines are dropped"
RESULT_TOO_LARGE = "RESULT_TOO_LARGE"
RESULT_NOT_JSON = "RESULT_NOT_JSON"
# 2**62 times any sensible base is far past any cap; a larger exponent would overflow.
_MAX_DOUBLINGS = 62


# -- who may see and change a run -------------------------------------------------------


def may_see_run(viewer: Viewer, run: Run) -> bool:
    """Whether the viewer may know the run exists: its creator or an administrator."""
    return may_manage(viewer, run.created_by)


def _in_sight(viewer: Viewer, run: Run | None) -> Run:
    if run is None or not may_see_run(viewer, run):
        raise NotFound(RUN_NOT_FOUND, path=["id"])
    return run


def visible_run(viewer: Viewer, run: Run | None) -> Run:
    """The run if the viewer may read it; `NotFound` alike for missing and hidden runs."""
    require_scope(viewer, Scope.READ)
    return _in_sight(viewer, run)


def manageable_run(viewer: Viewer, run: Run | None) -> Run:
    """The run if the viewer may cancel or retry it: with scope WRITE, its creator or an admin.

    Those who may change a run are exactly those who may see it, so anyone else gets the
    `NotFound` of a missing run rather than a refusal that would betray it.
    """
    require_scope(viewer, Scope.WRITE)
    return _in_sight(viewer, run)


def require_final(run: Run) -> None:
    """Refuse to retry a run that has not ended yet."""
    if not run.status.is_final:
        raise Conflict(f"the run is still {run.status.value}; only ended runs can be retried")


def require_not_final(run: Run) -> None:
    """Refuse to cancel a run that has already ended."""
    if run.status.is_final:
        raise Conflict(f"the run already ended as {run.status.value}")


def redact_error(viewer: Viewer, error: RunError | None) -> RunError | None:
    """The error as the viewer may see it: tracebacks are for administrators only."""
    if error is None or error.traceback is None or viewer.is_admin:
        return error
    return replace(error, traceback=None)


def redact_run(viewer: Viewer, run: Run) -> Run:
    """A copy of the run without what the viewer may not see, or the run itself."""
    error = redact_error(viewer, run.error)
    return run if error is run.error else replace(run, error=error)


def redact_event(viewer: Viewer, event: RunEvent) -> RunEvent:
    """A copy of the event without what the viewer may not see, or the event itself."""
    error = redact_error(viewer, event.error)
    return event if error is event.error else replace(event, error=error)


def filter_in_sight(viewer: Viewer, run_filter: RunFilter) -> RunFilter | None:
    """The filter narrowed to the runs the viewer may see; None when that leaves none.

    Administrators see every run; anyone else only their own.
    """
    if viewer.is_admin or run_filter.created_by == viewer.user.id:
        return run_filter
    if run_filter.created_by is None:
        return replace(run_filter, created_by=viewer.user.id)
    return None


def update_matches(viewer: Viewer, run_filter: RunFilter, update: RunUpdate) -> bool:
    """Whether a live update is about a run the viewer may see and that the filter selects.

    Only the filter's status, task and creator apply: an update carries nothing else.
    """
    return (
        may_manage(viewer, update.created_by)
        and (run_filter.statuses is None or update.status in run_filter.statuses)
        and (run_filter.task_name is None or update.task_name == run_filter.task_name)
        and (run_filter.created_by is None or update.created_by == run_filter.created_by)
    )


def creators_in_sight(viewer: Viewer, user_ids: Sequence[uuid.UUID]) -> list[uuid.UUID]:
    """Those users whose runs the viewer may list: everyone for an admin, else only oneself."""
    return [user_id for user_id in user_ids if may_manage(viewer, user_id)]


# -- retries ----------------------------------------------------------------------------


def backoff_delay(attempt: int, base: float, cap: float, rand: float) -> float:
    """Seconds to wait after failed attempt `attempt` (from 1): exponential, full jitter.

    The ceiling doubles with each attempt from `base` up to `cap`; the delay is `rand`
    (uniform in 0-1) times that ceiling, so retries of many runs that failed together spread
    out instead of arriving in waves.
    """
    doublings = min(max(attempt - 1, 0), _MAX_DOUBLINGS)
    ceiling = min(cap, base * 2.0**doublings)
    return max(0.0, min(1.0, rand)) * max(0.0, ceiling)


def retry_delay(run: Run, policy: RunPolicy, rand: float) -> float:
    """The back-off before retrying the run's current attempt."""
    return backoff_delay(run.attempt, run.backoff_seconds, policy.max_backoff_seconds, rand)


def is_owned_by(run: Run, attempt: int, worker_id: str) -> bool:
    """Whether the run is RUNNING the given attempt on the given worker."""
    return run.status is RunStatus.RUNNING and run.attempt == attempt and run.worker_id == worker_id


def status_after_failure(run: Run, *, failed: RunStatus, retriable: bool) -> RunStatus:
    """Where a run goes when its current attempt failed: QUEUED to retry, else a final status.

    A cancel request wins over a retry, so a cancelled run is never started again.
    """
    if run.cancel_requested_at is not None:
        return RunStatus.CANCELLED
    if retriable and run.attempt < run.max_attempts:
        return RunStatus.QUEUED
    return failed


def retry_message(delay: float) -> str:
    """The reason given on a retry's STATUS event."""
    return f"retrying in {math.ceil(delay)}s"


# -- bounds on what runs carry ----------------------------------------------------------


def json_size(value: Any) -> int:
    """Bytes of `value` as compact UTF-8 JSON; `ValueError` when it is not plain JSON."""
    try:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        raise ValueError(str(exc)) from exc
    return len(text.encode())


def result_error(result: Any, policy: RunPolicy) -> RunError | None:
    """Why a task's result cannot be kept, or None when it can."""
    try:
        size = json_size(result)
    except ValueError as exc:
        return RunError(RESULT_NOT_JSON, f"the result is not plain JSON: {exc}")
    if size > policy.max_result_bytes:
        return RunError(
            RESULT_TOO_LARGE,
            f"the result is {size} bytes as JSON; at most {policy.max_result_bytes} are kept",
        )
    return None


def clamp_fraction(fraction: float) -> float:
    """Progress as a fraction from 0 to 1; NaN, which has no place, counts as none."""
    return 0.0 if math.isnan(fraction) else max(0.0, min(1.0, fraction))


def truncate(text: str, limit: int) -> str:
    """`text` cut to `limit` characters, marked with an ellipsis when it was cut."""
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + "…"
