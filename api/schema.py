"""The GraphQL schema: every feature's root fields merged, with the error contract applied."""

from collections.abc import Iterable
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry import relay
from strawberry.schema.config import StrawberryConfig
from strawberry.schema.schema import StreamResult
from strawberry.types import ExecutionContext
from strawberry.types.graphql import OperationType

from api.context import Context, Info
from api.errors import apply_error_contract
from api.identity.mutations import IdentityMutation
from api.identity.queries import IdentityQuery
from api.limits import DocumentGuard, document_limits
from api.nodes import node_by_id
from api.plans.mutations import PlansMutation
from api.plans.queries import PlansQuery
from api.plans.subscriptions import PlansSubscription
from api.runs.events import EVENT_TYPES
from api.runs.mutations import RunsMutation
from api.runs.queries import RunsQuery
from api.runs.subscriptions import RunsSubscription
from api.system.mutations import SystemMutation
from api.system.queries import SystemQuery
from api.system.subscriptions import SystemSubscription
from infra.settings import Settings

# Shared by every request; bounded so unique query texts cannot grow memory without limit.
DOCUMENT_CACHE_SIZE = 512


@strawberry.type
class Query(SystemQuery, IdentityQuery, RunsQuery, PlansQuery):
    @strawberry.field(description="Any object by its global ID; null if it is not yours to see.")
    async def node(self, info: Info, id: relay.GlobalID) -> relay.Node | None:
        return await node_by_id(info, id)


@strawberry.type
class Mutation(SystemMutation, IdentityMutation, RunsMutation, PlansMutation):
    pass


@strawberry.type
class Subscription(SystemSubscription, RunsSubscription, PlansSubscription):
    pass


class TaskyardSchema(strawberry.Schema):
    """A schema whose errors all follow the API's error contract."""

    async def stream(
        self,
        query: str | None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        operation_extensions: dict[str, Any] | None = None,
        allowed_operation_types: Iterable[OperationType] | None = None,
    ) -> StreamResult:
        """Stream one operation; on a WebSocket, each operation gets loaders of its own."""
        if isinstance(context_value, Context):
            context_value = context_value.for_operation()
        return await super().stream(
            query,
            variable_values,
            context_value,
            root_value,
            operation_name,
            operation_extensions,
            allowed_operation_types,
        )

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Give every error a code; log and mask the unexpected ones."""
        context = execution_context.context if execution_context else None
        request_id = getattr(context, "request_id", None)
        for error in errors:
            apply_error_contract(error, request_id)


def build_schema(settings: Settings) -> TaskyardSchema:
    """The schema, with the limits and caches that `settings` ask for."""
    limits = document_limits(
        max_tokens=settings.max_tokens,
        max_depth=settings.max_query_depth,
        max_aliases=settings.max_aliases,
        max_directives=settings.max_directives,
        max_cost=settings.max_query_cost,
        introspection=settings.introspection_enabled,
        cache_size=DOCUMENT_CACHE_SIZE,
    )
    return TaskyardSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        types=EVENT_TYPES,
        extensions=[lambda: DocumentGuard(limits)],
        config=StrawberryConfig(disable_field_suggestions=settings.is_production),
    )
