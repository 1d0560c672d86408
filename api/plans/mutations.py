"""Plan mutations, for administrators: make, change and delete plans; put users on them."""

import strawberry

from api.context import Info
from api.errors import run_mutation
from api.identity.types import User
from api.nodes import object_uuid
from api.plans.inputs import CreatePlanInput, UpdatePlanInput
from api.plans.types import DeletePlanPayload, Plan, PlanPayload, SetUserPlanPayload
from domain.plans.services import PLAN_TARGET, USER_TARGET, PlanAction


@strawberry.type
class PlansMutation:
    @strawberry.mutation(description="Add a plan. Administrators only.")
    async def create_plan(self, info: Info, input: CreatePlanInput) -> PlanPayload:
        context = info.context

        async def act() -> PlanPayload:
            plan = await context.services.plans.create_plan(
                viewer=await context.viewer_for(PlanAction.CREATE, PLAN_TARGET),
                meta=context.meta,
                name=input.name,
                display_name=input.display_name,
                runs_per_day=input.runs_per_day,
                max_concurrent=input.max_concurrent,
                default_priority=input.default_priority,
                max_priority=input.max_priority,
            )
            return PlanPayload(plan=Plan.from_domain(plan))

        return await run_mutation(act, PlanPayload)

    @strawberry.mutation(
        description="Change a plan; its users' next starts follow. Administrators only."
    )
    async def update_plan(self, info: Info, input: UpdatePlanInput) -> PlanPayload:
        context = info.context

        async def act() -> PlanPayload:
            plan = await context.services.plans.update_plan(
                viewer=await context.viewer_for(PlanAction.UPDATE, PLAN_TARGET),
                meta=context.meta,
                name=input.name,
                changes=input.changes(),
            )
            return PlanPayload(plan=Plan.from_domain(plan))

        return await run_mutation(act, PlanPayload)

    @strawberry.mutation(
        description="Delete a plan. One that users are on needs reassignTo, the plan they "
        "move to; the free plan, which new users get, cannot be deleted. Administrators only."
    )
    async def delete_plan(
        self, info: Info, name: str, reassign_to: str | None = None
    ) -> DeletePlanPayload:
        context = info.context

        async def act() -> DeletePlanPayload:
            moved = await context.services.plans.delete_plan(
                viewer=await context.viewer_for(PlanAction.DELETE, PLAN_TARGET),
                meta=context.meta,
                name=name,
                reassign_to=reassign_to,
            )
            return DeletePlanPayload(deleted_name=name, moved_users=moved)

        return await run_mutation(act, DeletePlanPayload, root=())

    @strawberry.mutation(
        description="Put a user on a plan; it applies from their next start. Administrators only."
    )
    async def set_user_plan(
        self, info: Info, user_id: strawberry.ID, plan: str
    ) -> SetUserPlanPayload:
        context = info.context

        async def act() -> SetUserPlanPayload:
            user = await context.services.plans.set_user_plan(
                viewer=await context.viewer_for(PlanAction.SET_USER_PLAN, USER_TARGET),
                meta=context.meta,
                user_id=object_uuid(user_id, USER_TARGET, path=["userId"]),
                plan=plan,
            )
            # Later fields of this request see the user, and their quota, as the change left them.
            context.load.users.prime(user.id, user, force=True)
            context.load.quotas.clear_all()
            return SetUserPlanPayload(user=User.from_domain(user))

        return await run_mutation(act, SetUserPlanPayload, root=())
