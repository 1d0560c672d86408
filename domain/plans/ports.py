"""Ports the plan services need: plans, quota counters, run slots and notifications."""

import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import date, datetime
from typing import Protocol

from domain.paging import Page, PageRequest
from domain.plans.models import Notification, Plan, PlanUsage, Standing, UserFilter
from domain.runs.models import Run


class PlanRepository(Protocol):
    """Plans, and which users are on them."""

    async def get(self, name: str) -> Plan | None: ...

    async def all(self) -> list[Plan]:
        """Every plan, smallest daily limit first."""
        ...

    async def add(self, plan: Plan) -> None:
        """Insert a new plan; `Conflict` when the name is taken."""
        ...

    async def save(self, plan: Plan) -> None: ...

    async def delete(self, name: str) -> None: ...

    async def of_user(self, user_id: uuid.UUID) -> Plan | None:
        """The plan a user is on now, read afresh; None for an unknown user."""
        ...

    async def count_users(self, name: str) -> int:
        """How many users are on the plan."""
        ...

    async def move_users(self, from_plan: str, to_plan: str) -> int:
        """Put every user of one plan on another; how many moved."""
        ...

    async def set_user_plan(self, user_id: uuid.UUID, name: str) -> bool:
        """Put one user on a plan; False for an unknown user."""
        ...

    async def page_users(self, user_filter: UserFilter, request: PageRequest) -> Page[uuid.UUID]:
        """A page of the IDs of users that match, by email, with the total that match."""
        ...

    async def usage(self, day: date) -> list[PlanUsage]:
        """Every plan with its users, their runs counted on `day` and running now."""
        ...


class QuotaRepository(Protocol):
    """Each user's runs counted per quota day, and the run slots they hold."""

    async def count_run(self, user_id: uuid.UUID, day: date, *, limit: int) -> int | None:
        """Count one more run of the user on `day` unless that reaches past `limit`.

        The new count, or None (and nothing counted) when `limit` runs were counted already.
        Concurrent calls for one user queue up on the counter's row, so none over-counts.
        """
        ...

    async def counted(self, user_id: uuid.UUID, day: date) -> int:
        """How many runs of the user were counted on `day`."""
        ...

    async def standings(self, user_ids: Sequence[uuid.UUID], day: date) -> list[Standing | None]:
        """Each user's plan, runs counted on `day` and running now; None for unknown users."""
        ...

    async def lock_slots(self, user_id: uuid.UUID) -> None:
        """Serialize the starts of one user's runs until the unit of work ends."""
        ...

    async def running(self, user_id: uuid.UUID) -> int:
        """How many of the user's runs are RUNNING, from the run rows themselves."""
        ...

    async def earlier_due(self, run: Run, *, now: datetime) -> bool:
        """Whether an older QUEUED run of the same user may start now (so goes first)."""
        ...

    async def next_due(self, user_id: uuid.UUID, *, now: datetime) -> Run | None:
        """The user's oldest QUEUED run that may start now."""
        ...


class NotificationRepository(Protocol):
    """Notifications kept for their users."""

    async def add(self, notification: Notification) -> None: ...

    async def page(self, user_id: uuid.UUID, request: PageRequest) -> Page[Notification]:
        """A page of one user's notifications, newest first."""
        ...


class NotificationBus(Protocol):
    """Carries new notifications to every API process, best effort: the store is the truth."""

    async def publish_notification(self, notification: Notification) -> None: ...

    def watch_notifications(
        self, user_id: uuid.UUID
    ) -> AbstractAsyncContextManager[AsyncIterator[Notification]]:
        """Live notifications of one user from the moment of entering."""
        ...
