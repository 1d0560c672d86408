"""The GraphQL schema: every feature's root fields merged, with the error contract applied."""

from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry import relay
from strawberry.extensions import (
    AddValidationRules,
    DisableIntrospection,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    ValidationCache,
)
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext

from api.errors import apply_error_contract
from api.identity.mutations import IdentityMutation
from api.identity.queries import IdentityQuery, node_by_id
from api.limits import QueryCost, max_directives_rule
from api.system.mutations import SystemMutation
from api.system.queries import SystemQuery
from api.system.subscriptions import SystemSubscription
from infra.settings import Settings

# Shared by every request; bounded so unique query texts cannot grow memory without limit.
DOCUMENT_CACHE_SIZE = 512


@strawberry.type
class Query(SystemQuery, IdentityQuery):
    @strawberry.field(description="Any object by its global ID; null if it is not yours to see.")
    async def node(self, info: strawberry.Info, id: relay.GlobalID) -> relay.Node | None:
        return await node_by_id(info, id)


@strawberry.type
class Mutation(SystemMutation, IdentityMutation):
    pass


@strawberry.type
class Subscription(SystemSubscription):
    pass


class TaskyardSchema(strawberry.Schema):
    """A schema whose errors all follow the API's error contract."""

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
    # Rule classes are made once: the validation cache is keyed by them.
    rules = [
        *QueryDepthLimiter(max_depth=settings.max_query_depth).validation_rules,
        *MaxAliasesLimiter(max_alias_count=settings.max_aliases).validation_rules,
        max_directives_rule(settings.max_directives),
    ]
    extensions: list[Any] = [
        lambda: ParserCache(maxsize=DOCUMENT_CACHE_SIZE),
        lambda: ValidationCache(maxsize=DOCUMENT_CACHE_SIZE),
        lambda: MaxTokensLimiter(max_token_count=settings.max_tokens),
        lambda: AddValidationRules(rules),
        lambda: QueryCost(limit=settings.max_query_cost),
    ]
    if not settings.introspection_enabled:
        extensions.append(DisableIntrospection)
    return TaskyardSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=extensions,
        config=StrawberryConfig(disable_field_suggestions=settings.is_production),
    )
