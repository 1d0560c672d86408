"""Rules about daily quotas: calendar days in a time zone, resets, and the 80 % warning."""

import uuid
from datetime import UTC, date, datetime, timedelta
from fractions import Fraction
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.plans import rules
from domain.plans.models import Severity, Standing
from tests.unit.test_plan_rules import make_plan

instants = st.datetimes(
    min_value=datetime(1971, 1, 1), max_value=datetime(2099, 12, 30), timezones=st.just(UTC)
)
zones = st.timezones()
TICK = timedelta(microseconds=1)


@given(instants, zones)
def test_the_quota_day_resets_at_the_next_local_midnight(at: datetime, zone: ZoneInfo) -> None:
    day = rules.quota_day(at, zone)
    resets = rules.resets_at(day, zone)
    assert resets > at
    assert resets.tzinfo is UTC
    # The last instant before the reset is still the same day; the reset starts a later one.
    assert rules.quota_day(resets - TICK, zone) == day
    assert rules.quota_day(resets, zone) > day


@given(instants)
def test_days_in_utc_are_utc_dates(at: datetime) -> None:
    assert rules.quota_day(at, ZoneInfo("UTC")) == at.date()


def test_a_day_is_the_local_one_not_utcs() -> None:
    late_evening_in_new_york = datetime(2026, 3, 8, 3, 30, tzinfo=UTC)
    zone = ZoneInfo("America/New_York")
    assert rules.quota_day(late_evening_in_new_york, zone) == date(2026, 3, 7)
    assert rules.resets_at(date(2026, 3, 7), zone) == datetime(2026, 3, 8, 5, tzinfo=UTC)
    # The day clocks spring forward is an hour short; the next reset is still local midnight.
    assert rules.resets_at(date(2026, 3, 8), zone) == datetime(2026, 3, 9, 4, tzinfo=UTC)


@given(st.integers(min_value=1, max_value=rules.MAX_RUNS_PER_DAY))
def test_the_warning_comes_at_the_first_count_of_eighty_percent(limit: int) -> None:
    threshold = rules.warn_threshold(limit)
    assert 1 <= threshold <= limit
    assert Fraction(threshold, limit) >= Fraction(4, 5)
    assert Fraction(threshold - 1, limit) < Fraction(4, 5)


def test_a_refusal_names_the_limit_the_usage_and_the_reset() -> None:
    resets = datetime(2026, 5, 2, tzinfo=UTC)
    refusal = rules.exceeded(make_plan(name="free", runs_per_day=20), 20, resets)
    assert (refusal.limit, refusal.used, refusal.resets_at) == (20, 20, resets)
    assert "20 of 20 runs" in refusal.message
    assert "free plan" in refusal.message
    assert resets.isoformat() in refusal.message


def test_the_warning_says_where_the_user_stands() -> None:
    user_id = uuid.uuid4()
    now = datetime(2026, 5, 1, 12, tzinfo=UTC)
    resets = datetime(2026, 5, 2, tzinfo=UTC)
    notice = rules.quota_warning(user_id, make_plan(runs_per_day=20), 16, resets, now)
    assert (notice.user_id, notice.kind, notice.severity) == (
        user_id,
        "quota.warning",
        Severity.WARNING,
    )
    assert notice.data == {
        "plan": "team",
        "runsToday": 16,
        "limit": 20,
        "resetsAt": resets.isoformat(),
    }


@pytest.mark.parametrize(("runs", "running"), [(0, 0), (20, 2)])
def test_a_quota_shows_the_plans_limits(runs: int, running: int) -> None:
    resets = datetime(2026, 5, 2, tzinfo=UTC)
    plan = make_plan(runs_per_day=20, max_concurrent=2)
    quota = rules.quota_of(Standing(plan, runs, running), resets)
    assert (quota.runs_today, quota.limit, quota.running, quota.max_concurrent) == (
        runs,
        20,
        running,
        2,
    )
    assert quota.resets_at == resets
