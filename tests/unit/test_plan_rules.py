"""Rules about plans: bounds on their settings, lanes they allow, and deleting them."""

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.errors import Conflict, InvalidFields, InvalidInput, PermissionDenied
from domain.plans import rules
from domain.plans.models import Plan, PlanChanges
from domain.runs.models import Priority

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
priorities = st.sampled_from(list(Priority))


def make_plan(**fields: object) -> Plan:
    values: dict[str, object] = {
        "name": "team",
        "display_name": "Team",
        "runs_per_day": 100,
        "max_concurrent": 5,
        "default_priority": Priority.NORMAL,
        "max_priority": Priority.HIGH,
        "created_at": EPOCH,
    }
    return Plan(**(values | fields))  # type: ignore[arg-type]


def problem_paths(plan: Plan) -> set[str]:
    return {str(problem.path[0]) for problem in rules.plan_problems(plan) if problem.path}


@given(st.integers(min_value=-(10**12), max_value=10**12))
def test_runs_per_day_must_be_from_one_to_ten_million(runs: int) -> None:
    bad = "runsPerDay" in problem_paths(make_plan(runs_per_day=runs))
    assert bad == (not 1 <= runs <= rules.MAX_RUNS_PER_DAY)


@given(st.integers(min_value=-(10**9), max_value=10**9))
def test_max_concurrent_must_be_from_one_to_ten_thousand(limit: int) -> None:
    bad = "maxConcurrent" in problem_paths(make_plan(max_concurrent=limit))
    assert bad == (not 1 <= limit <= rules.MAX_CONCURRENT)


@pytest.mark.parametrize("name", ["free", "pro", "team-2", "a_b", "x" * 32])
def test_slug_names_are_accepted(name: str) -> None:
    assert problem_paths(make_plan(name=name)) == set()


@pytest.mark.parametrize("name", ["", "a", "Pro", "2fast", "-x", "has space", "x" * 33, "é-plan"])
def test_other_names_are_refused_at_name(name: str) -> None:
    assert problem_paths(make_plan(name=name)) == {"name"}


@given(priorities, priorities)
def test_the_default_lane_may_not_be_above_the_highest(default: Priority, top: Priority) -> None:
    bad = "defaultPriority" in problem_paths(make_plan(default_priority=default, max_priority=top))
    assert bad == (rules.rank(default) > rules.rank(top))


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(InvalidFields) as caught:
        rules.checked_plan(make_plan(name="X", runs_per_day=-1, max_concurrent=0))
    assert {str(p.path[0]) for p in caught.value.problems if p.path} == {
        "name",
        "runsPerDay",
        "maxConcurrent",
    }


def test_a_change_keeps_what_it_does_not_name_and_is_checked() -> None:
    plan = make_plan()
    changed = rules.changed_plan(plan, PlanChanges(runs_per_day=7, display_name="  Small   team "))
    assert changed == make_plan(runs_per_day=7, display_name="Small team")
    with pytest.raises(InvalidInput) as caught:
        rules.changed_plan(plan, PlanChanges(max_concurrent=10_001))
    assert caught.value.path == ["maxConcurrent"]


@given(priorities, priorities, st.none() | priorities)
def test_a_start_gets_the_default_lane_or_what_it_asks_up_to_the_highest(
    default: Priority, top: Priority, asked: Priority | None
) -> None:
    plan = make_plan(default_priority=min(default, top, key=rules.rank), max_priority=top)
    if asked is not None and rules.rank(asked) > rules.rank(top):
        with pytest.raises(PermissionDenied) as caught:
            rules.choose_priority(plan, asked)
        assert caught.value.path == ["priority"]
        assert rules.choose_priority(plan, asked, cap=True) is top
    else:
        assert rules.choose_priority(plan, asked) is (asked or plan.default_priority)


def test_the_default_plan_cannot_be_deleted() -> None:
    with pytest.raises(Conflict):
        rules.require_deletable(make_plan(name=rules.DEFAULT_PLAN), 0, "pro")


def test_a_plan_in_use_needs_another_plan_for_its_users() -> None:
    with pytest.raises(Conflict, match="3 users"):
        rules.require_deletable(make_plan(), 3, None)
    with pytest.raises(InvalidInput) as caught:
        rules.require_deletable(make_plan(), 3, "team")
    assert caught.value.path == ["reassignTo"]
    rules.require_deletable(make_plan(), 3, "pro")
    rules.require_deletable(make_plan(), 0, None)
