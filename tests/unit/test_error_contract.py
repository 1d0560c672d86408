"""One mapping from domain errors to codes, to payload userErrors and to top-level errors."""

import logging

import pytest
from graphql import GraphQLError, build_schema, graphql_sync

from api.errors import (
    INTERNAL_MESSAGE,
    ErrorCode,
    UserError,
    apply_error_contract,
    code_for,
    run_mutation,
)
from domain import errors as domain


class RunMissing(domain.NotFound):
    """A feature's own kind of not-found, as later features will declare them."""


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (domain.InvalidInput("x"), ErrorCode.BAD_USER_INPUT),
        (domain.NotFound("x"), ErrorCode.NOT_FOUND),
        (domain.Unauthenticated("x"), ErrorCode.UNAUTHENTICATED),
        (domain.PermissionDenied("x"), ErrorCode.FORBIDDEN),
        (domain.RateLimited("x", retry_after=1), ErrorCode.RATE_LIMITED),
        (domain.QuotaExceeded("x"), ErrorCode.QUOTA_EXCEEDED),
        (domain.Conflict("x"), ErrorCode.CONFLICT),
        (domain.Unavailable("x"), ErrorCode.UNAVAILABLE),
        (RunMissing("x"), ErrorCode.NOT_FOUND),
        (domain.DomainError("x"), ErrorCode.INTERNAL),
    ],
)
def test_every_domain_error_has_its_code(error: domain.DomainError, code: ErrorCode) -> None:
    assert code_for(error) is code


async def fail_with(error: Exception) -> list[UserError]:
    """A mutation body that fails with `error`."""
    raise error


def collect(*, user_errors: list[UserError]) -> list[UserError]:
    """A payload that is just its userErrors."""
    return user_errors


async def test_an_expected_failure_becomes_user_errors_anchored_at_the_input() -> None:
    error = domain.InvalidInput("too long", path=["message"])
    [user_error] = await run_mutation(lambda: fail_with(error), collect)
    assert (user_error.code, user_error.message) == (ErrorCode.BAD_USER_INPUT, "too long")
    assert user_error.path == ["input", "message"]


async def test_user_error_paths_follow_the_argument_and_stringify_indexes() -> None:
    error = domain.Conflict("duplicate", path=["steps", 2, "name"])
    [user_error] = await run_mutation(lambda: fail_with(error), collect, root=("pipeline",))
    assert user_error.path == ["pipeline", "steps", "2", "name"]


async def test_a_failure_of_no_field_has_no_path() -> None:
    [user_error] = await run_mutation(lambda: fail_with(domain.NotFound("gone")), collect)
    assert (user_error.code, user_error.path) == (ErrorCode.NOT_FOUND, None)


async def test_success_is_returned_as_is() -> None:
    async def succeed() -> list[UserError]:
        return []

    assert await run_mutation(succeed, collect) == []


@pytest.mark.parametrize(
    "error",
    [domain.Unauthenticated("sign in"), domain.RateLimited("slow down", retry_after=3)],
)
async def test_request_level_failures_are_raised_not_returned(error: domain.DomainError) -> None:
    with pytest.raises(type(error)):
        await run_mutation(lambda: fail_with(error), collect)


async def test_a_mutation_may_expect_a_request_level_failure() -> None:
    error = domain.Unauthenticated("wrong password")
    [user_error] = await run_mutation(
        lambda: fail_with(error), collect, expected=(domain.Unauthenticated,)
    )
    assert user_error.code is ErrorCode.UNAUTHENTICATED


async def test_unexpected_exceptions_are_not_turned_into_user_errors() -> None:
    with pytest.raises(KeyError):
        await run_mutation(lambda: fail_with(KeyError("bug")), collect)


def field_error(original: Exception) -> GraphQLError:
    """The error graphql-core makes when a resolver at `ping` raises `original`."""
    return GraphQLError(str(original), path=["ping"], original_error=original)


def test_a_domain_error_at_the_top_level_keeps_its_message_and_code() -> None:
    error = field_error(domain.NotFound("no such run"))
    apply_error_contract(error, "req-1")
    assert (error.message, error.extensions) == ("no such run", {"code": "NOT_FOUND"})


def test_retriable_errors_say_so_and_rate_limits_say_when() -> None:
    limited = field_error(domain.RateLimited("slow down", retry_after=2.5))
    apply_error_contract(limited, None)
    assert limited.extensions == {"code": "RATE_LIMITED", "retryAfter": 2.5, "retriable": True}
    unavailable = field_error(domain.Unavailable("queue down"))
    apply_error_contract(unavailable, None)
    assert unavailable.extensions == {"code": "UNAVAILABLE", "retriable": True}


@pytest.mark.parametrize(
    ("document", "variables", "code"),
    [
        ("{ a(n: 1 }", {}, "GRAPHQL_PARSE_FAILED"),
        ("{ b }", {}, "GRAPHQL_VALIDATION_FAILED"),
        ("query($n: Int) { a(n: $n) }", {"n": "x"}, "BAD_USER_INPUT"),
        ("query($n: Int!) { a(n: $n) }", {}, "BAD_USER_INPUT"),
        ("query($i: I) { a(i: $i) }", {"i": {"m": 42}}, "BAD_USER_INPUT"),
        ("query($i: I) { a(i: $i) }", {"i": {"nope": 1}}, "BAD_USER_INPUT"),
    ],
)
def test_request_errors_as_graphql_core_reports_them_get_their_codes(
    document: str, variables: dict[str, object], code: str
) -> None:
    schema = build_schema("input I { m: String } type Query { a(n: Int, i: I): Int }")
    [error] = graphql_sync(schema, document, variable_values=variables).errors or []
    message = error.message
    apply_error_contract(error, None)
    assert error.extensions == {"code": code}
    assert error.message == message


def test_an_unexpected_error_is_masked_and_logged_with_its_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bug = RuntimeError("password=hunter2 in a stack frame")
    try:
        raise bug
    except RuntimeError:
        error = field_error(bug)
    with caplog.at_level(logging.ERROR, logger="taskyard.api"):
        apply_error_contract(error, "req-42")
    assert error.message == INTERNAL_MESSAGE
    assert error.extensions == {"code": "INTERNAL", "requestId": "req-42"}
    assert "hunter2" not in str(error.formatted)
    [record] = caplog.records
    assert record.exc_info is not None
    assert record.exc_info[1] is bug
