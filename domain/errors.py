"""The one hierarchy of expected failures; the API maps each class to a stable code."""

from collections.abc import Sequence


class DomainError(Exception):
    """An expected failure that a caller can act on."""

    def __init__(self, message: str, *, path: Sequence[str | int] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.path = list(path) if path is not None else None


class InvalidInput(DomainError):
    """The input breaks a rule; `path` names the offending field."""


class InvalidFields(InvalidInput):
    """Several inputs break rules at once; `problems` holds one error per field."""

    def __init__(self, message: str, *, problems: Sequence[InvalidInput]) -> None:
        super().__init__(message)
        self.problems = list(problems)


class NotFound(DomainError):
    """The object does not exist, or the viewer may not know that it does."""


class Conflict(DomainError):
    """The object is in a state that does not allow the action."""


class Unauthenticated(DomainError):
    """The caller is not signed in, or its credentials are no longer valid."""


class PermissionDenied(DomainError):
    """The caller is known but may not do this."""


class RateLimited(DomainError):
    """The caller sent too many requests; retry after `retry_after` seconds."""

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class QuotaExceeded(DomainError):
    """The caller's plan does not allow more of this right now."""


class Unavailable(DomainError):
    """A dependency is down or too slow; the same call may succeed later."""


class StreamLagged(Unavailable):
    """A live stream's consumer fell too far behind; resume after `resume_after_seq`."""

    def __init__(self, message: str, *, resume_after_seq: int) -> None:
        super().__init__(message)
        self.resume_after_seq = resume_after_seq
