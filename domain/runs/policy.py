"""Limits and timings of runs that an operator may tune."""

from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True, slots=True)
class RunPolicy:
    """Every tunable bound on runs, in one place."""

    # Largest accepted parameters, as compact JSON.
    max_params_bytes: int = 64 * 1024
    # A start with the same user and idempotency key within this window returns the first run.
    idempotency_window: timedelta = timedelta(hours=24)
    max_idempotency_key: int = 200
    # Bounds on what a start may ask for, whatever the task's defaults.
    max_timeout_seconds: float = 24 * 3600.0
    max_attempts: int = 20
    max_backoff_seconds: float = 3600.0
    # Log lines one run keeps; past it one notice is written and later lines are dropped.
    max_log_lines: int = 10_000
    max_log_line_chars: int = 4_000
    max_progress_message_chars: int = 500
    # Largest result kept, as compact JSON.
    max_result_bytes: int = 256 * 1024
    # Events read from the store at once when a stream replays.
    replay_chunk: int = 500
    # A worker with no heartbeat for this long is lost; its runs are retried or failed.
    worker_stale_after: timedelta = timedelta(seconds=30)
    # An attempt this long past its timeout is lost even if its worker is alive. Longer than
    # a worker keeps retrying a save (five minutes), so a slow save is never taken from it.
    overdue_grace: timedelta = timedelta(minutes=6)
    # A live stream that heard nothing for this long reads the store, so a publish that Redis
    # lost (the final event above all) delays a subscriber but never strands it.
    live_recheck_after: timedelta = timedelta(seconds=5)
