"""Limits on what one GraphQL document may ask for: directives and cost.

Depth and alias rules come from Strawberry's limiters; directives and cost are ours.
"""

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from graphql import (
    DirectiveNode,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
    VariableNode,
    parse,
    specified_rules,
)
from graphql.validation import ASTValidationRule, NoSchemaIntrospectionCustomRule, ValidationRule
from strawberry.extensions import MaxAliasesLimiter, QueryDepthLimiter, SchemaExtension
from strawberry.schema.schema import validate_document

# Connections default to this page size when `first`/`last` is absent, for costing only.
DEFAULT_PAGE_COST = 100
# Arguments that say how many objects a field returns; `count` sizes lists such as latestLogs.
PAGE_ARGUMENTS = ("first", "last", "count")


def max_directives_rule(limit: int) -> type[ValidationRule]:
    """A validation rule refusing documents with more than `limit` directives."""

    class MaxDirectives(ValidationRule):
        """Counts every directive in the document."""

        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            self.count = 0

        def enter_directive(self, node: DirectiveNode, *_: Any) -> None:
            self.count += 1
            if self.count == limit + 1:
                self.report_error(
                    GraphQLError(f"The document has more than {limit} directives.", node)
                )

    return MaxDirectives


def _page_size(field: FieldNode, variables: Mapping[str, Any]) -> int | None:
    for argument in field.arguments or ():
        if argument.name.value not in PAGE_ARGUMENTS:
            continue
        value = argument.value
        if isinstance(value, IntValueNode):
            return int(value.value)
        if isinstance(value, VariableNode):
            found = variables.get(value.name.value)
            return found if isinstance(found, int) else DEFAULT_PAGE_COST
    return None


def _fields(
    selection_set: SelectionSetNode | None,
    fragments: Mapping[str, FragmentDefinitionNode],
    seen: frozenset[str] = frozenset(),
) -> Iterator[FieldNode]:
    for selection in selection_set.selections if selection_set else ():
        if isinstance(selection, FieldNode):
            yield selection
        elif isinstance(selection, InlineFragmentNode):
            yield from _fields(selection.selection_set, fragments, seen)
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            if name in fragments and name not in seen:
                yield from _fields(fragments[name].selection_set, fragments, seen | {name})


def query_cost(
    operation: OperationDefinitionNode,
    fragments: Mapping[str, FragmentDefinitionNode],
    variables: Mapping[str, Any],
) -> int:
    """Each field costs 1 for every object it may be fetched for, as GitHub counts nodes.

    A field below a connection asked for `first: 50` is fetched up to 50 times; `count`
    multiplies the same way.
    """

    def cost(selection_set: SelectionSetNode | None, multiplier: int) -> int:
        total = 0
        for field in _fields(selection_set, fragments):
            total += multiplier
            size = _page_size(field, variables)
            total += cost(field.selection_set, multiplier * size if size else multiplier)
        return total

    return cost(operation.selection_set, 1)


def _operation(document: DocumentNode, name: str | None) -> OperationDefinitionNode | None:
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if name is None:
        return operations[0] if len(operations) == 1 else None
    return next((o for o in operations if o.name and o.name.value == name), None)


@dataclass(frozen=True, slots=True)
class DocumentLimits:
    """What one document may ask for, and the caches that make checking it cheap."""

    parse: Callable[..., DocumentNode]
    validate: Callable[..., list[GraphQLError]]
    rules: tuple[type[ASTValidationRule], ...]
    max_tokens: int
    max_cost: int


def document_limits(
    *,
    max_tokens: int,
    max_depth: int,
    max_aliases: int,
    max_directives: int,
    max_cost: int,
    introspection: bool,
    cache_size: int,
) -> DocumentLimits:
    """Limits with their rule classes made once: the validation cache is keyed by them."""
    rules: list[type[ASTValidationRule]] = [
        *specified_rules,
        *QueryDepthLimiter(max_depth=max_depth).validation_rules,
        *MaxAliasesLimiter(max_alias_count=max_aliases).validation_rules,
        max_directives_rule(max_directives),
    ]
    if not introspection:
        rules.append(NoSchemaIntrospectionCustomRule)
    return DocumentLimits(
        parse=lru_cache(maxsize=cache_size)(parse),
        validate=lru_cache(maxsize=cache_size)(validate_document),
        rules=tuple(rules),
        max_tokens=max_tokens,
        max_cost=max_cost,
    )


class DocumentGuard(SchemaExtension):
    """Parses and validates through shared caches, enforces every limit, reports the cost.

    One extension instead of one per concern: Strawberry's per-request cost grows with the
    number of extensions, and this sits on every request.
    """

    def __init__(self, limits: DocumentLimits) -> None:
        self.limits = limits
        self.cost: int | None = None

    def on_parse(self) -> Iterator[None]:
        """Parse once per distinct document, refusing ones with too many tokens."""
        context = self.execution_context
        context.graphql_document = self.limits.parse(
            context.query, max_tokens=self.limits.max_tokens
        )
        yield

    def on_validate(self) -> Iterator[None]:
        """Validate once per distinct document, then cost the operation that will run."""
        context = self.execution_context
        document = context.graphql_document
        assert document is not None
        errors = self.limits.validate(context.schema._schema, document, self.limits.rules)
        context.pre_execution_errors = errors
        yield
        if errors:
            return
        chosen = _operation(document, context.operation_name)
        if chosen is None:
            return
        fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        self.cost = query_cost(chosen, fragments, context.variables or {})
        if self.cost > self.limits.max_cost:
            context.pre_execution_errors = [
                GraphQLError(
                    f"The query costs {self.cost}, over the limit of {self.limits.max_cost}."
                )
            ]

    def get_results(self) -> dict[str, Any]:
        """The cost, as clients budget by it."""
        if self.cost is None:
            return {}
        return {"cost": {"requestedQueryCost": self.cost, "maximumAvailable": self.limits.max_cost}}
