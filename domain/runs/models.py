"""Plain models of tasks, runs, their attempts and their events."""

import enum
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


class RunStatus(enum.Enum):
    """Where a run is in its life; the last four are final."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"

    @property
    def is_final(self) -> bool:
        """Whether nothing more will happen to a run in this status."""
        return self not in (RunStatus.QUEUED, RunStatus.RUNNING)


class Priority(enum.Enum):
    """The lane a run waits in; higher lanes get a head start in the queue."""

    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"


class AttemptOutcome(enum.Enum):
    """How one attempt of a run ended."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"
    # Its worker stopped sending heartbeats; the reaper ended the attempt.
    WORKER_LOST = "worker_lost"
    # Its worker shut down cleanly and handed the run back to the queue.
    INTERRUPTED = "interrupted"


class LogLevel(enum.Enum):
    """Severity of a run's log line."""

    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


class EventKind(enum.Enum):
    """What a run event reports."""

    STATUS = "status"
    PROGRESS = "progress"
    LOG = "log"
    # The final event of a run: its final status with the result or the error.
    RESULT = "result"


# The error type the reaper gives a run whose worker died.
WORKER_LOST = "WORKER_LOST"


@dataclass(frozen=True, slots=True)
class TaskDefaults:
    """What a run of a task gets unless its start says otherwise."""

    timeout_seconds: float = 300.0
    max_attempts: int = 3
    # The first retry waits this long; each later one twice as long, with jitter.
    backoff_seconds: float = 2.0
    priority: Priority = Priority.NORMAL


@dataclass(frozen=True, slots=True)
class Task:
    """A registered kind of work; workers register the tasks they can run."""

    name: str
    description: str
    # JSON Schema of the parameters, so a frontend can draw a form and the API can validate.
    params_schema: dict[str, Any]
    defaults: TaskDefaults
    registered_at: datetime


@dataclass(frozen=True, slots=True)
class RunError:
    """Why an attempt or a run failed."""

    type: str
    message: str
    # Shown to administrators only.
    traceback: str | None = None


@dataclass(slots=True)
class Run:
    """One execution of a task with given parameters. PostgreSQL holds the truth of it."""

    id: uuid.UUID
    task_name: str
    params: dict[str, Any]
    status: RunStatus
    priority: Priority
    created_by: uuid.UUID | None
    created_at: datetime
    max_attempts: int
    timeout_seconds: float
    backoff_seconds: float
    idempotency_key: str | None = None
    # The run this one retries, for runs made by `retryRun`.
    retry_of: uuid.UUID | None = None
    # How many attempts have started; the current one while RUNNING.
    attempt: int = 0
    # A queued run does not start before this (a retry's back-off).
    not_before: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    cancel_requested_at: datetime | None = None
    progress: float | None = None
    progress_message: str | None = None
    result: Any = None
    error: RunError | None = None
    # The sequence number of the run's latest event.
    last_seq: int = 0
    # The worker running the current attempt, while RUNNING.
    worker_id: str | None = None


@dataclass(slots=True)
class RunAttempt:
    """One try at a run, on one worker."""

    run_id: uuid.UUID
    number: int
    worker_id: str
    started_at: datetime
    finished_at: datetime | None = None
    outcome: AttemptOutcome | None = None
    error: RunError | None = None


@dataclass(frozen=True, slots=True)
class RunEvent:
    """One entry in a run's ordered stream; `seq` counts from 1 per run, without gaps.

    Which fields are set depends on `kind`:
    STATUS: status, attempt, and message (a reason) or error (a retried attempt's failure);
    PROGRESS: fraction (0-1) and message; LOG: level and message;
    RESULT: the final status, and result or error.
    """

    run_id: uuid.UUID
    seq: int
    at: datetime
    kind: EventKind
    status: RunStatus | None = None
    attempt: int | None = None
    fraction: float | None = None
    level: LogLevel | None = None
    message: str | None = None
    result: Any = None
    error: RunError | None = None

    @property
    def is_final(self) -> bool:
        """Whether this event ends the run's stream."""
        return self.kind is EventKind.RESULT


@dataclass(frozen=True, slots=True)
class RunFilter:
    """Narrows a list of runs; every set field must match."""

    statuses: frozenset[RunStatus] | None = None
    task_name: str | None = None
    created_by: uuid.UUID | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    # Case-insensitive substring of the task name, the idempotency key or the error message.
    search: str | None = None


class RunOrder(enum.Enum):
    """How a list of runs is sorted; ties are broken by ID the same way."""

    CREATED_AT_DESC = "created_at_desc"
    CREATED_AT_ASC = "created_at_asc"


@dataclass(frozen=True, slots=True)
class RunUpdate:
    """A run's new state, broadcast for live run lists."""

    run_id: uuid.UUID
    status: RunStatus
    task_name: str
    created_by: uuid.UUID | None
    at: datetime = field(compare=False)
