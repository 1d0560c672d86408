"""What a task raises to say how its attempt ended, when the default is not right."""

import asyncio


class TaskFailure(Exception):
    """A task failed in a way it understands; the run retries while attempts remain."""

    retriable = True


class PermanentFailure(TaskFailure):
    """A failure that another attempt cannot fix; the run fails at once."""

    retriable = False


class InvalidParams(PermanentFailure):
    """The run's parameters do not fit the task's parameter model."""


class RunCancelled(asyncio.CancelledError):
    """Someone asked to cancel the run; the task stops as if its coroutine were cancelled."""


def is_retriable(exc: BaseException) -> bool:
    """Whether another attempt may succeed where this exception ended one.

    Unknown exceptions are retried: most failures in real work are passing ones.
    """
    return bool(getattr(exc, "retriable", True))
