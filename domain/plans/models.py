"""Plain models of plans, quota standings and notifications."""

import enum
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from domain.identity.models import Role
from domain.runs.models import Priority


@dataclass(frozen=True, slots=True)
class Plan:
    """What the users on a plan may run: per day, at once, and in which lanes."""

    name: str
    display_name: str
    runs_per_day: int
    max_concurrent: int
    # The lane of a start that names none.
    default_priority: Priority
    # The highest lane a start may ask for.
    max_priority: Priority
    created_at: datetime


@dataclass(frozen=True, slots=True)
class PlanChanges:
    """New values for some of a plan's settings; None leaves a setting as it is."""

    display_name: str | None = None
    runs_per_day: int | None = None
    max_concurrent: int | None = None
    default_priority: Priority | None = None
    max_priority: Priority | None = None


@dataclass(frozen=True, slots=True)
class Quota:
    """Where a user stands against their plan right now."""

    runs_today: int
    limit: int
    # The next local midnight in the quota's time zone, when `runs_today` starts again at 0.
    resets_at: datetime
    running: int
    max_concurrent: int


@dataclass(frozen=True, slots=True)
class Standing:
    """A user's plan with their runs counted today and running now."""

    plan: Plan
    runs_today: int
    running: int


@dataclass(frozen=True, slots=True)
class PlanUsage:
    """How much of the platform one plan's users use today."""

    plan: Plan
    users: int
    runs_today: int
    running: int


@dataclass(frozen=True, slots=True)
class UserFilter:
    """Narrows a list of users; every set field must match."""

    plan: str | None = None
    role: Role | None = None
    # Case-insensitive substring of the email or the display name.
    search: str | None = None


class Severity(enum.Enum):
    """How urgent a notification is, for whoever routes it."""

    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


@dataclass(frozen=True, slots=True)
class Notification:
    """Something a user should know about, kept and sent live."""

    id: uuid.UUID
    user_id: uuid.UUID
    # A dotted name that alerting routes by, such as "quota.warning".
    kind: str
    severity: Severity
    message: str
    created_at: datetime
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Admission:
    """A start that its plan allows: the plan, the lane, and any notification it caused."""

    plan: Plan
    priority: Priority
    notices: tuple[Notification, ...] = ()
