"""Database failures, translated into domain errors in this one place."""

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError

from domain.errors import Conflict, DomainError, Unavailable


def translate(exc: BaseException) -> DomainError | None:
    """The domain error a database failure means, or None when it is a bug to surface."""
    if isinstance(exc, IntegrityError):
        return Conflict("the change conflicts with existing data")
    if isinstance(exc, OperationalError | InterfaceError | OSError | ConnectionError):
        return Unavailable("the database is unavailable; try again")
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return Unavailable("the database connection was lost; try again")
    return None


@contextmanager
def translate_errors() -> Iterator[None]:
    """Raise the translated domain error for database failures inside the block."""
    try:
        yield
    except Exception as exc:
        translated = translate(exc)
        if translated is None:
            raise
        raise translated from exc
