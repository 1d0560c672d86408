"""Plans enforced on runs: the daily quota and lane cap at start, concurrency at claim.

A start counts against the day in the transaction that inserts its run, so the count
commits or rolls back with the run. A claim takes a per-user lock, counts the user's
RUNNING runs from the run rows and holds the run back, QUEUED, while the plan's slots are
full or an older run of the user is due; such a run is never failed for it. When a run
leaves RUNNING, the user's oldest due run is woken at once instead of at its next check.
"""

import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from domain.errors import Conflict
from domain.plans import rules
from domain.plans.models import Admission
from domain.plans.ports import NotificationBus
from domain.ports import UnitOfWork
from domain.runs.models import Priority, Run

NO_PLAN = "your account has no plan; ask an administrator"


@dataclass(frozen=True, slots=True)
class PlanPolicy:
    """How plans are applied, as settings tune it."""

    # Daily quotas follow the calendar in this zone.
    zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    # A run held back by its plan's concurrency is looked at again this much later.
    recheck: timedelta = timedelta(seconds=1)


class PlanLimits:
    """The plan checks that the run services make inside their own transactions."""

    def __init__(self, *, bus: NotificationBus, policy: PlanPolicy) -> None:
        self._bus = bus
        self.policy = policy

    async def admit(
        self, uow: UnitOfWork, user_id: uuid.UUID, requested: Priority | None, *, retry: bool
    ) -> Admission:
        """The lane of a start by the user's plan, read afresh; `count` must follow.

        Raises `PermissionDenied` for a lane above the plan's (a retry is brought down to
        the plan's highest lane instead).
        """
        plan = await uow.plans.of_user(user_id)
        if plan is None:
            raise Conflict(NO_PLAN)
        return Admission(plan, rules.choose_priority(plan, requested, cap=retry))

    async def count(
        self, uow: UnitOfWork, user_id: uuid.UUID, admission: Admission, *, now: datetime
    ) -> Admission:
        """Count the start against the plan's daily limit; the admission with any warning.

        Raises `DailyQuotaExceeded` over the limit, which rolls the start back. Called last
        in the start's transaction: the counter's row stays locked until the commit, and
        the user's other starts wait for it.
        """
        plan = admission.plan
        day = rules.quota_day(now, self.policy.zone)
        runs = await uow.quotas.count_run(user_id, day, limit=plan.runs_per_day)
        if runs is None:
            used = await uow.quotas.counted(user_id, day)
            raise rules.exceeded(plan, used, rules.resets_at(day, self.policy.zone))
        if runs != rules.warn_threshold(plan.runs_per_day):
            return admission
        resets = rules.resets_at(day, self.policy.zone)
        notice = rules.quota_warning(user_id, plan, runs, resets, now)
        await uow.notifications.add(notice)
        return replace(admission, notices=(notice,))

    async def announce(self, admission: Admission) -> None:
        """Publish a committed start's notifications; a lost one is still in the store."""
        for notice in admission.notices:
            await self._bus.publish_notification(notice)

    async def hold_until(self, uow: UnitOfWork, run: Run, now: datetime) -> datetime | None:
        """When to look again at a run its plan holds back now; None when it may start.

        The per-user lock lasts until the claim commits, so two claims of one user never
        both see a free slot.
        """
        if run.created_by is None:
            return None
        await uow.quotas.lock_slots(run.created_by)
        plan = await uow.plans.of_user(run.created_by)
        if plan is None:
            return None
        free = plan.max_concurrent - await uow.quotas.running(run.created_by)
        # Order only matters for the last free slot: with two or more, a run ahead of this one
        # starts beside it, and holding this one back would only churn the queue.
        if free <= 0 or (free == 1 and await uow.quotas.earlier_due(run, now=now)):
            return now + self.policy.recheck
        return None

    async def next_in_line(self, uow: UnitOfWork, run: Run, now: datetime) -> Run | None:
        """The run to wake now that `run` left RUNNING: its user's oldest due queued run."""
        if run.created_by is None:
            return None
        waiting = await uow.quotas.next_due(run.created_by, now=now)
        return waiting if waiting is not None and waiting.id != run.id else None
