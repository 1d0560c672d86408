"""Rules about plans and quotas that need no I/O: bounds, lanes, quota days, warnings."""

import re
import uuid
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from domain.errors import Conflict, DomainError, InvalidInput, PermissionDenied
from domain.plans.errors import DailyQuotaExceeded
from domain.plans.models import Notification, Plan, PlanChanges, Quota, Severity, Standing
from domain.runs.inputs import raise_problems
from domain.runs.models import Priority

# New users get this plan, so it always exists.
DEFAULT_PLAN = "free"
PLAN_NAME = re.compile(r"^[a-z][a-z0-9_-]{1,31}$")
MAX_RUNS_PER_DAY = 10_000_000
MAX_CONCURRENT = 10_000
MAX_DISPLAY_NAME = 100
# A start that brings the day's count to 80 % of the limit warns the user, once a day.
WARN_NUMERATOR, WARN_DENOMINATOR = 4, 5
QUOTA_WARNING = "quota.warning"
PLAN_NOT_FOUND = "no plan with this name"

# Lanes from lowest to highest, for comparing what a start asks with what a plan allows.
_RANK = {Priority.LOW: 0, Priority.NORMAL: 1, Priority.HIGH: 2}


def rank(priority: Priority) -> int:
    """A lane's place, higher for lanes served first."""
    return _RANK[priority]


# -- what a plan may be -----------------------------------------------------------------


def _bounded(value: int, low: int, high: int, path: str) -> list[InvalidInput]:
    if low <= value <= high:
        return []
    return [InvalidInput(f"must be from {low:,} to {high:,}", path=[path])]


def plan_problems(plan: Plan) -> list[InvalidInput]:
    """Everything wrong with a plan's settings, each at its field."""
    problems = [
        *_bounded(plan.runs_per_day, 1, MAX_RUNS_PER_DAY, "runsPerDay"),
        *_bounded(plan.max_concurrent, 1, MAX_CONCURRENT, "maxConcurrent"),
    ]
    if not PLAN_NAME.fullmatch(plan.name):
        message = "a name is 2 to 32 lowercase letters, digits, - or _, starting with a letter"
        problems.append(InvalidInput(message, path=["name"]))
    if not 0 < len(plan.display_name) <= MAX_DISPLAY_NAME:
        message = f"display name must be 1 to {MAX_DISPLAY_NAME} characters"
        problems.append(InvalidInput(message, path=["displayName"]))
    if rank(plan.default_priority) > rank(plan.max_priority):
        message = "the default lane may not be above the plan's highest lane"
        problems.append(InvalidInput(message, path=["defaultPriority"]))
    return problems


def checked_plan(plan: Plan) -> Plan:
    """The plan with its display name tidied, once every setting is within bounds."""
    tidy = replace(plan, display_name=" ".join(plan.display_name.split()))
    problems = plan_problems(tidy)
    if problems:
        raise_problems(problems)
    return tidy


def changed_plan(plan: Plan, changes: PlanChanges) -> Plan:
    """The plan with `changes` applied and checked."""
    updates = {name: getattr(changes, name) for name in PlanChanges.__dataclass_fields__}
    return checked_plan(replace(plan, **{k: v for k, v in updates.items() if v is not None}))


def found_plan(
    plan: Plan | None, *, path: str = "name", missing: type[DomainError] = InvalidInput
) -> Plan:
    """The plan, or `missing` (a bad input by default) when it does not exist."""
    if plan is None:
        raise missing(PLAN_NOT_FOUND, path=[path])
    return plan


def name_taken() -> InvalidInput:
    """The refusal of a new plan whose name another plan has."""
    return InvalidInput("a plan with this name already exists", path=["name"])


def require_deletable(plan: Plan, users: int, reassign_to: str | None) -> None:
    """Refuse to delete the default plan, or a plan in use without a plan to move users to."""
    if plan.name == DEFAULT_PLAN:
        raise Conflict(f"{DEFAULT_PLAN} is the plan new users get; it cannot be deleted")
    if reassign_to == plan.name:
        raise InvalidInput("users must move to another plan", path=["reassignTo"])
    if users and reassign_to is None:
        raise Conflict(f"{users} users are on this plan; name a plan to move them to")


# -- lanes --------------------------------------------------------------------------------


def choose_priority(plan: Plan, requested: Priority | None, *, cap: bool = False) -> Priority:
    """The lane of a start: the plan's default, or what it asks up to the plan's highest.

    Asking above the plan's highest lane is refused, unless `cap` (a retry, which asks for
    its original's lane) brings it down to that lane instead.
    """
    if requested is None:
        return plan.default_priority
    if rank(requested) <= rank(plan.max_priority):
        return requested
    if cap:
        return plan.max_priority
    message = f"the {plan.name} plan allows lanes up to {plan.max_priority.name}"
    raise PermissionDenied(message, path=["priority"])


# -- the daily quota ----------------------------------------------------------------------


def quota_day(at: datetime, zone: ZoneInfo) -> date:
    """The calendar day in `zone` that the instant `at` falls on."""
    return at.astimezone(zone).date()


def resets_at(day: date, zone: ZoneInfo) -> datetime:
    """The instant (in UTC) that the quota day after `day` begins in `zone`.

    Where midnight is skipped by a clock change, the day begins at the first instant after.
    """
    local = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)
    # A skipped local time converts as if before the change, which lands just past the gap.
    return local.astimezone(UTC)


def warn_threshold(limit: int) -> int:
    """The day's count at which a user is warned: 80 % of the limit, rounded up."""
    return -(-limit * WARN_NUMERATOR // WARN_DENOMINATOR)


def exceeded(plan: Plan, used: int, resets: datetime) -> DailyQuotaExceeded:
    """The refusal of a start over the plan's daily limit."""
    message = (
        f"daily quota exceeded: {used} of {plan.runs_per_day} runs used today on the "
        f"{plan.name} plan; it resets at {resets.isoformat()}"
    )
    return DailyQuotaExceeded(message, limit=plan.runs_per_day, used=used, resets_at=resets)


def quota_warning(
    user_id: uuid.UUID, plan: Plan, runs: int, resets: datetime, now: datetime
) -> Notification:
    """The notification that a user has used 80 % of the day's runs."""
    message = (
        f"you have used {runs} of your {plan.runs_per_day} runs today; "
        f"the quota resets at {resets.isoformat()}"
    )
    return Notification(
        id=uuid.uuid4(),
        user_id=user_id,
        kind=QUOTA_WARNING,
        severity=Severity.WARNING,
        message=message,
        created_at=now,
        data={
            "plan": plan.name,
            "runsToday": runs,
            "limit": plan.runs_per_day,
            "resetsAt": resets.isoformat(),
        },
    )


def quota_of(standing: Standing, resets: datetime) -> Quota:
    """A user's quota as their standing shows it."""
    return Quota(
        runs_today=standing.runs_today,
        limit=standing.plan.runs_per_day,
        resets_at=resets,
        running=standing.running,
        max_concurrent=standing.plan.max_concurrent,
    )
