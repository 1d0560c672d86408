"""The plan service: administrators shape plans and put users on them; users see their quota."""

import enum
import uuid
from collections.abc import AsyncGenerator, Sequence

from domain.audit import Attempt, Auditor
from domain.errors import NotFound
from domain.identity.models import RequestMeta, Scope, User, Viewer
from domain.identity.rules import may_manage, require_admin, require_scope
from domain.paging import Page, PageRequest
from domain.plans import rules
from domain.plans.limits import PlanPolicy
from domain.plans.models import (
    Notification,
    Plan,
    PlanChanges,
    PlanUsage,
    Quota,
    UserFilter,
)
from domain.plans.ports import NotificationBus
from domain.ports import Clock, UnitOfWork, UnitOfWorkFactory
from domain.runs.models import Priority


class PlanAction(enum.StrEnum):
    """Names of plan changes in the audit trail."""

    CREATE = "plan.create"
    UPDATE = "plan.update"
    DELETE = "plan.delete"
    SET_USER_PLAN = "user.set_plan"


PLAN_TARGET = "Plan"
USER_TARGET = "User"
USER_NOT_FOUND = "no user with this ID"


class PlanService:
    """Plans as administrators manage them, and quotas as their users see them."""

    def __init__(
        self, *, uow: UnitOfWorkFactory, bus: NotificationBus, clock: Clock, policy: PlanPolicy
    ) -> None:
        self._uow = uow
        self._bus = bus
        self._clock = clock
        self._policy = policy
        self._auditor = Auditor(uow, clock)

    # -- changes, administrators only -------------------------------------------------------

    async def create_plan(
        self,
        *,
        viewer: Viewer,
        meta: RequestMeta,
        name: str,
        display_name: str,
        runs_per_day: int,
        max_concurrent: int,
        default_priority: Priority,
        max_priority: Priority,
    ) -> Plan:
        """Add a plan; every setting is checked, and every problem reported at once."""

        async def change(uow: UnitOfWork) -> Plan:
            require_admin(viewer)
            plan = rules.checked_plan(
                Plan(
                    name=name,
                    display_name=display_name,
                    runs_per_day=runs_per_day,
                    max_concurrent=max_concurrent,
                    default_priority=default_priority,
                    max_priority=max_priority,
                    created_at=self._clock.now(),
                )
            )
            if await uow.plans.get(plan.name) is not None:
                raise rules.name_taken()
            await uow.plans.add(plan)
            return plan

        attempt = Attempt(PlanAction.CREATE, PLAN_TARGET, viewer, meta, target_id=name[:64])
        return await self._auditor.run(attempt, change)

    async def update_plan(
        self, *, viewer: Viewer, meta: RequestMeta, name: str, changes: PlanChanges
    ) -> Plan:
        """Change some settings of a plan; its users' next starts and claims follow them."""

        async def change(uow: UnitOfWork) -> Plan:
            require_admin(viewer)
            found = rules.found_plan(await uow.plans.get(name), missing=NotFound)
            plan = rules.changed_plan(found, changes)
            await uow.plans.save(plan)
            return plan

        attempt = Attempt(PlanAction.UPDATE, PLAN_TARGET, viewer, meta, target_id=name[:64])
        return await self._auditor.run(attempt, change)

    async def delete_plan(
        self, *, viewer: Viewer, meta: RequestMeta, name: str, reassign_to: str | None = None
    ) -> int:
        """Remove a plan, first moving its users to `reassign_to`; how many users moved.

        A plan that users are on is a `Conflict` unless `reassign_to` names another plan.
        """

        async def change(uow: UnitOfWork) -> int:
            require_admin(viewer)
            plan = rules.found_plan(await uow.plans.get(name), missing=NotFound)
            if reassign_to is not None:
                rules.found_plan(await uow.plans.get(reassign_to), path="reassignTo")
            users = await uow.plans.count_users(plan.name)
            rules.require_deletable(plan, users, reassign_to)
            moved = await uow.plans.move_users(plan.name, reassign_to) if reassign_to else 0
            # A user put on the plan meanwhile makes this fail on the foreign key: a Conflict.
            await uow.plans.delete(plan.name)
            return moved

        attempt = Attempt(PlanAction.DELETE, PLAN_TARGET, viewer, meta, target_id=name[:64])
        return await self._auditor.run(attempt, change)

    async def set_user_plan(
        self, *, viewer: Viewer, meta: RequestMeta, user_id: uuid.UUID, plan: str
    ) -> User:
        """Put a user on a plan; it applies from their next start."""

        async def change(uow: UnitOfWork) -> User:
            require_admin(viewer)
            rules.found_plan(await uow.plans.get(plan), path="plan")
            if not await uow.plans.set_user_plan(user_id, plan):
                raise NotFound(USER_NOT_FOUND, path=["userId"])
            [user] = await uow.users.get_many([user_id])
            if user is None:
                raise NotFound(USER_NOT_FOUND, path=["userId"])
            return user

        attempt = Attempt(
            PlanAction.SET_USER_PLAN, USER_TARGET, viewer, meta, target_id=str(user_id)
        )
        return await self._auditor.run(attempt, change)

    # -- reads ------------------------------------------------------------------------------

    async def list_plans(self, *, viewer: Viewer) -> list[Plan]:
        """Every plan, smallest daily limit first. Administrators only."""
        require_admin(viewer)
        async with self._uow() as uow:
            return await uow.plans.all()

    async def plan_of(self, *, viewer: Viewer) -> Plan | None:
        """The plan the viewer is on now."""
        require_scope(viewer, Scope.READ)
        async with self._uow() as uow:
            return await uow.plans.of_user(viewer.user.id)

    async def quotas(self, *, viewer: Viewer, user_ids: Sequence[uuid.UUID]) -> list[Quota | None]:
        """Each user's quota now; None for users the viewer may not see, and unknown ones."""
        require_scope(viewer, Scope.READ)
        shown = [user_id for user_id in user_ids if may_manage(viewer, user_id)]
        day = rules.quota_day(self._clock.now(), self._policy.zone)
        resets = rules.resets_at(day, self._policy.zone)
        async with self._uow() as uow:
            standings = dict(zip(shown, await uow.quotas.standings(shown, day), strict=True))
        return [
            rules.quota_of(standing, resets) if (standing := standings.get(u)) else None
            for u in user_ids
        ]

    async def plan_usage(self, *, viewer: Viewer) -> list[PlanUsage]:
        """Every plan with its users, their runs today and running now. Administrators only."""
        require_admin(viewer)
        day = rules.quota_day(self._clock.now(), self._policy.zone)
        async with self._uow() as uow:
            return await uow.plans.usage(day)

    async def page_users(
        self, *, viewer: Viewer, user_filter: UserFilter, request: PageRequest
    ) -> Page[User]:
        """A page of users by email. Administrators only."""
        require_admin(viewer)
        async with self._uow() as uow:
            ids = await uow.plans.page_users(user_filter, request)
            users = await uow.users.get_many(ids.items)
        kept = [(user, key) for user, key in zip(users, ids.keys, strict=True) if user]
        return Page(
            items=[user for user, _ in kept],
            keys=[key for _, key in kept],
            has_next=ids.has_next,
            has_previous=ids.has_previous,
            total_count=ids.total_count,
        )

    async def page_notifications(
        self, *, viewer: Viewer, request: PageRequest
    ) -> Page[Notification]:
        """A page of the viewer's own notifications, newest first."""
        require_scope(viewer, Scope.READ)
        async with self._uow() as uow:
            return await uow.notifications.page(viewer.user.id, request)

    async def gen_notifications(self, *, viewer: Viewer) -> AsyncGenerator[Notification, None]:
        """The viewer's own new notifications, live, from now on."""
        require_scope(viewer, Scope.READ)
        async with self._bus.watch_notifications(viewer.user.id) as live:
            async for notification in live:
                yield notification
