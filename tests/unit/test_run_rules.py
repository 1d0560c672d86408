"""Rules about runs: lanes, back-off, what follows a failure, visibility, bounds."""

import math
import uuid
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.errors import Conflict, NotFound, PermissionDenied
from domain.identity.models import Role, Scope
from domain.runs import rules
from domain.runs.models import Priority, Run, RunError, RunFilter, RunStatus, RunUpdate
from domain.runs.policy import RunPolicy
from tests.unit.run_fakes import EPOCH, make_viewer

fractions = st.floats(min_value=0, max_value=1)


def a_run(created_by: uuid.UUID | None = None, **changes: Any) -> Run:
    """A queued run with three attempts."""
    run = Run(
        id=uuid.uuid4(),
        task_name="sum",
        params={},
        status=RunStatus.QUEUED,
        priority=Priority.NORMAL,
        created_by=created_by,
        created_at=EPOCH,
        max_attempts=3,
        timeout_seconds=10,
        backoff_seconds=2,
    )
    return replace(run, **changes)


def test_lanes_give_head_starts_that_age_into_each_other() -> None:
    head = rules.LANE_HEAD_START_SECONDS
    assert head == {Priority.HIGH: 300, Priority.NORMAL: 60, Priority.LOW: 0}
    # A LOW run started five minutes before a HIGH one scores the same: it is not starved.
    assert 0 - head[Priority.LOW] == 300 - head[Priority.HIGH]
    assert rules.RUN_JOB == "run"


@given(
    attempt=st.integers(min_value=1, max_value=10_000),
    base=st.floats(min_value=0.01, max_value=1000),
    cap=st.floats(min_value=0.01, max_value=86_400),
    rand=fractions,
)
def test_backoff_stays_between_zero_and_its_capped_ceiling(
    attempt: int, base: float, cap: float, rand: float
) -> None:
    delay = rules.backoff_delay(attempt, base, cap, rand)
    ceiling = min(cap, base * 2.0 ** min(attempt - 1, 62))
    assert 0 <= delay <= cap
    assert math.isclose(delay, rand * ceiling, rel_tol=1e-9, abs_tol=1e-12)


@given(attempt=st.integers(min_value=1, max_value=35), rand=fractions)
def test_backoff_ceiling_doubles_with_each_attempt_until_the_cap(attempt: int, rand: float) -> None:
    first = rules.backoff_delay(attempt, 1.0, 1e12, rand)
    second = rules.backoff_delay(attempt + 1, 1.0, 1e12, rand)
    assert math.isclose(second, 2 * first, rel_tol=1e-9, abs_tol=1e-12)


def test_backoff_with_full_jitter_spans_the_whole_range() -> None:
    assert rules.backoff_delay(3, 2.0, 60.0, 0.0) == 0.0
    assert rules.backoff_delay(3, 2.0, 60.0, 1.0) == 8.0
    assert rules.backoff_delay(30, 2.0, 60.0, 1.0) == 60.0


@pytest.mark.parametrize(
    ("attempt", "retriable", "cancel", "expected"),
    [
        (1, True, False, RunStatus.QUEUED),
        (2, True, False, RunStatus.QUEUED),
        (3, True, False, RunStatus.FAILED),
        (1, False, False, RunStatus.FAILED),
        (1, True, True, RunStatus.CANCELLED),
        (3, False, True, RunStatus.CANCELLED),
    ],
)
def test_a_failed_attempt_retries_while_attempts_remain_unless_cancelled(
    attempt: int, retriable: bool, cancel: bool, expected: RunStatus
) -> None:
    run = a_run(attempt=attempt, cancel_requested_at=EPOCH if cancel else None)
    assert rules.status_after_failure(run, failed=RunStatus.FAILED, retriable=retriable) is expected


def test_a_timed_out_last_attempt_ends_timed_out() -> None:
    run = a_run(attempt=3)
    assert rules.status_after_failure(run, failed=RunStatus.TIMED_OUT, retriable=True) is (
        RunStatus.TIMED_OUT
    )


def test_retry_delay_uses_the_runs_attempt_and_base_capped_by_policy() -> None:
    run = a_run(attempt=3, backoff_seconds=10)
    assert rules.retry_delay(run, RunPolicy(max_backoff_seconds=25), 1.0) == 25
    assert rules.retry_delay(run, RunPolicy(), 0.5) == 20
    assert rules.retry_message(0.2) == "retrying in 1s"


def test_owners_and_admins_see_a_run_and_others_get_not_found_alike() -> None:
    owner, other, admin = make_viewer(), make_viewer(), make_viewer(Role.ADMIN)
    run = a_run(created_by=owner.user.id)
    assert rules.visible_run(owner, run) is run
    assert rules.visible_run(admin, run) is run
    with pytest.raises(NotFound) as hidden:
        rules.visible_run(other, run)
    with pytest.raises(NotFound) as missing:
        rules.visible_run(other, None)
    assert hidden.value.message == missing.value.message


def test_reading_needs_read_and_changing_needs_write() -> None:
    reader = make_viewer(Role.VIEWER)
    token_without_read = make_viewer(scopes=frozenset({Scope.WRITE}))
    mine = a_run(created_by=reader.user.id)
    assert rules.visible_run(reader, mine) is mine
    with pytest.raises(PermissionDenied):
        rules.manageable_run(reader, mine)
    with pytest.raises(PermissionDenied):
        rules.visible_run(token_without_read, a_run(created_by=token_without_read.user.id))


def test_an_admin_role_acting_through_a_narrow_token_sees_only_its_own_runs() -> None:
    narrow = make_viewer(Role.ADMIN, scopes=frozenset({Scope.READ, Scope.WRITE}))
    with pytest.raises(NotFound):
        rules.manageable_run(narrow, a_run(created_by=uuid.uuid4()))


def test_only_ended_runs_retry_and_only_live_runs_cancel() -> None:
    with pytest.raises(Conflict, match="still queued"):
        rules.require_final(a_run())
    with pytest.raises(Conflict, match="already ended as succeeded"):
        rules.require_not_final(a_run(status=RunStatus.SUCCEEDED))


def test_tracebacks_are_shown_to_admins_only() -> None:
    error = RunError("ValueError", "bad", traceback="Traceback ...")
    run = a_run(status=RunStatus.FAILED, error=error)
    assert rules.redact_run(make_viewer(Role.ADMIN), run) is run
    redacted = rules.redact_run(make_viewer(), run)
    assert redacted.error == RunError("ValueError", "bad")
    assert run.error is error


def test_lists_narrow_to_the_viewers_own_runs_unless_admin() -> None:
    viewer, admin, someone = make_viewer(), make_viewer(Role.ADMIN), uuid.uuid4()
    assert rules.filter_in_sight(viewer, RunFilter()) == RunFilter(created_by=viewer.user.id)
    assert rules.filter_in_sight(viewer, RunFilter(created_by=someone)) is None
    assert rules.filter_in_sight(admin, RunFilter(created_by=someone)) == RunFilter(
        created_by=someone
    )
    assert rules.creators_in_sight(viewer, [someone, viewer.user.id]) == [viewer.user.id]
    assert rules.creators_in_sight(admin, [someone]) == [someone]


def test_live_updates_match_visibility_and_filter() -> None:
    viewer = make_viewer()
    update = RunUpdate(uuid.uuid4(), RunStatus.RUNNING, "sum", viewer.user.id, at=EPOCH)
    assert rules.update_matches(viewer, RunFilter(), update)
    assert rules.update_matches(viewer, RunFilter(statuses=frozenset({RunStatus.RUNNING})), update)
    assert not rules.update_matches(viewer, RunFilter(task_name="other"), update)
    assert not rules.update_matches(viewer, RunFilter(statuses=frozenset()), update)
    assert not rules.update_matches(make_viewer(), RunFilter(), update)
    assert rules.update_matches(make_viewer(Role.ADMIN), RunFilter(), update)


@given(st.floats(allow_nan=True, allow_infinity=True))
def test_progress_is_clamped_to_a_fraction(fraction: float) -> None:
    assert 0.0 <= rules.clamp_fraction(fraction) <= 1.0


@given(st.text(), st.integers(min_value=1, max_value=50))
def test_truncation_keeps_short_text_and_cuts_long_text_to_the_limit(text: str, limit: int) -> None:
    cut = rules.truncate(text, limit)
    assert len(cut) <= limit
    assert cut == text if len(text) <= limit else cut.endswith("…")


def test_results_must_be_plain_json_within_the_size_bound() -> None:
    policy = RunPolicy(max_result_bytes=10)
    assert rules.result_error({"a": 1}, policy) is None
    errors = [rules.result_error(bad, policy) for bad in ("x" * 20, {"a": {1, 2}}, float("nan"))]
    assert [error.type if error else None for error in errors] == [
        rules.RESULT_TOO_LARGE,
        rules.RESULT_NOT_JSON,
        rules.RESULT_NOT_JSON,
    ]


def test_json_size_counts_compact_utf8_bytes() -> None:
    assert rules.json_size({"a": [1, 2]}) == len('{"a":[1,2]}')
    assert rules.json_size("é") == 4
