"""The one error contract: domain errors become payload `userErrors` or top-level errors."""

import enum
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol, TypeVar

import strawberry
from graphql import GraphQLError, GraphQLSyntaxError

from domain import errors as domain

logger = logging.getLogger("taskyard.api")


@strawberry.enum(description="Stable machine-readable error codes.")
class ErrorCode(enum.Enum):
    BAD_USER_INPUT = "BAD_USER_INPUT"
    NOT_FOUND = "NOT_FOUND"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    FORBIDDEN = "FORBIDDEN"
    RATE_LIMITED = "RATE_LIMITED"
    QUOTA_EXCEEDED = "QUOTA_EXCEEDED"
    CONFLICT = "CONFLICT"
    UNAVAILABLE = "UNAVAILABLE"
    INTERNAL = "INTERNAL"
    BAD_REQUEST = "BAD_REQUEST"
    GRAPHQL_PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
    GRAPHQL_VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"


CODES: dict[type[domain.DomainError], ErrorCode] = {
    domain.InvalidInput: ErrorCode.BAD_USER_INPUT,
    domain.NotFound: ErrorCode.NOT_FOUND,
    domain.Unauthenticated: ErrorCode.UNAUTHENTICATED,
    domain.PermissionDenied: ErrorCode.FORBIDDEN,
    domain.RateLimited: ErrorCode.RATE_LIMITED,
    domain.QuotaExceeded: ErrorCode.QUOTA_EXCEEDED,
    domain.Conflict: ErrorCode.CONFLICT,
    domain.Unavailable: ErrorCode.UNAVAILABLE,
}
# These concern the whole request, so they never become a payload's userErrors.
REQUEST_LEVEL = (domain.Unauthenticated, domain.RateLimited)
RETRIABLE = frozenset({ErrorCode.RATE_LIMITED, ErrorCode.UNAVAILABLE})
INTERNAL_MESSAGE = "Internal server error"


def code_for(exc: domain.DomainError) -> ErrorCode:
    """The code of a domain error, by its nearest mapped class."""
    for cls in type(exc).__mro__:
        if cls in CODES:
            return CODES[cls]
    return ErrorCode.INTERNAL


@strawberry.type(description="An expected failure of a mutation, tied to an input field.")
class UserError:
    code: ErrorCode
    message: str
    path: list[str] | None = strawberry.field(
        description='Path to the input field at fault, e.g. ["input", "message"].'
    )


def user_error(exc: domain.DomainError, *, root: Sequence[str] = ("input",)) -> UserError:
    """A `UserError` for a domain error, its path anchored at the mutation argument."""
    path = [*root, *map(str, exc.path)] if exc.path is not None else None
    return UserError(code=code_for(exc), message=exc.message, path=path)


def user_errors(exc: domain.DomainError, *, root: Sequence[str] = ("input",)) -> list[UserError]:
    """The `UserError`s of a domain error: one per problem when it names several."""
    if isinstance(exc, domain.InvalidFields) and exc.problems:
        return [user_error(problem, root=root) for problem in exc.problems]
    return [user_error(exc, root=root)]


T = TypeVar("T")
P = TypeVar("P", covariant=True)


class ErrorPayload(Protocol[P]):
    """A mutation's payload type, which can be made from its userErrors alone."""

    def __call__(self, *, user_errors: list[UserError]) -> P: ...


async def run_mutation(
    action: Callable[[], Awaitable[T]],
    payload: ErrorPayload[T],
    *,
    root: Sequence[str] = ("input",),
    expected: tuple[type[domain.DomainError], ...] = (),
) -> T:
    """Run a mutation; an expected failure becomes a `payload` holding only `userErrors`.

    Authentication and rate limits concern the whole request and stay top-level errors,
    unless the mutation lists them in `expected` (signing in, where they are the answer).
    """
    try:
        return await action()
    except domain.DomainError as exc:
        if isinstance(exc, REQUEST_LEVEL) and not isinstance(exc, expected):
            raise
        return payload(user_errors=user_errors(exc, root=root))


def _request_error_code(error: GraphQLError) -> ErrorCode:
    if isinstance(error, GraphQLSyntaxError):
        return ErrorCode.GRAPHQL_PARSE_FAILED
    # graphql-core reports variable coercion failures without a path, like validation errors.
    if error.message.startswith("Variable '$"):
        return ErrorCode.BAD_USER_INPUT
    return ErrorCode.GRAPHQL_VALIDATION_FAILED


def apply_error_contract(error: GraphQLError, request_id: str | None) -> None:
    """Give a GraphQL error its stable code in place, masking anything unexpected."""
    original = error.original_error
    if isinstance(original, domain.DomainError):
        code = code_for(original)
        extensions: dict[str, object] = {"code": code.value}
        if isinstance(original, domain.RateLimited):
            extensions["retryAfter"] = original.retry_after
        if isinstance(original, domain.StreamLagged):
            extensions["resumeAfterSeq"] = original.resume_after_seq
        if code in RETRIABLE:
            extensions["retriable"] = True
        if isinstance(original, domain.InvalidInput) and original.path is not None:
            # The argument at fault; the error's own `path` is where in the response it arose.
            extensions["argumentPath"] = [str(part) for part in original.path]
        error.extensions = extensions
    elif error.path is None and (original is None or isinstance(original, GraphQLError)):
        # graphql-core wraps its own coercion errors, so a bad variable carries a GraphQLError.
        error.extensions = {"code": _request_error_code(error).value}
    else:
        logger.error(
            "unexpected error in %s",
            ".".join(map(str, error.path or ())) or "operation",
            exc_info=(type(original), original, original.__traceback__) if original else None,
        )
        error.message = INTERNAL_MESSAGE
        error.original_error = None
        error.extensions = {"code": ErrorCode.INTERNAL.value, "requestId": request_id}
