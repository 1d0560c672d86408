"""Checks of a start's inputs: every problem is named, each with its own path."""

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.errors import InvalidFields, InvalidInput
from domain.runs.inputs import StartRequest, check_start, idempotency_key_problems
from domain.runs.policy import RunPolicy
from tests.unit.run_fakes import FakeParamsValidator, make_task

POLICY = RunPolicy(max_params_bytes=100, max_idempotency_key=16)
VALIDATOR = FakeParamsValidator()


def problems_of(request: StartRequest, *, known: bool = True) -> list[tuple[list[Any], str]]:
    """(path, message) of each problem `check_start` refuses the request with."""
    task = make_task() if known else None
    with pytest.raises(InvalidInput) as caught:
        check_start(request, task, VALIDATOR, POLICY)
    error = caught.value
    found = error.problems if isinstance(error, InvalidFields) else [error]
    return [(problem.path or [], problem.message) for problem in found]


def test_a_valid_request_gives_the_task() -> None:
    task = make_task()
    assert check_start(StartRequest("sum", {"a": 1, "b": 2}), task, VALIDATOR, POLICY) is task


def test_every_failing_parameter_is_reported_with_its_path() -> None:
    found = problems_of(StartRequest("sum", {"a": "one"}))
    assert sorted(path for path, _ in found) == [["params", "a"], ["params", "b"]]


def test_a_single_problem_is_raised_as_itself() -> None:
    with pytest.raises(InvalidInput) as caught:
        check_start(StartRequest("sum", {"a": 1}), make_task(), VALIDATOR, POLICY)
    assert not isinstance(caught.value, InvalidFields)
    assert caught.value.path == ["params", "b"]


def test_none_params_mean_an_empty_object() -> None:
    found = problems_of(StartRequest("sum", None))
    assert sorted(path for path, _ in found) == [["params", "a"], ["params", "b"]]


def test_an_unknown_task_is_named_with_the_other_problems() -> None:
    found = problems_of(StartRequest("nope", {"a": 1}, idempotency_key="has space"), known=False)
    assert [path for path, _ in found] == [["task"], ["idempotencyKey"]]
    assert "nope" in found[0][1]


def test_params_over_the_size_bound_are_refused_without_schema_checks() -> None:
    found = problems_of(StartRequest("sum", {"a": 1, "b": 2, "pad": "x" * 100}))
    assert found == [(["params"], found[0][1])]
    assert "at most 100" in found[0][1]


def test_params_that_are_not_plain_json_are_refused() -> None:
    assert [path for path, _ in problems_of(StartRequest("sum", {"a": {1}}))] == [["params"]]


@given(st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1))
def test_visible_ascii_keys_up_to_the_bound_are_accepted(key: str) -> None:
    assert bool(idempotency_key_problems(key, POLICY)) == (len(key) > 16)


@pytest.mark.parametrize("key", ["", "with space", "tab\t", "naïve", "x" * 17])
def test_empty_long_or_unusual_keys_are_refused(key: str) -> None:
    [problem] = idempotency_key_problems(key, POLICY)
    assert problem.path == ["idempotencyKey"]
