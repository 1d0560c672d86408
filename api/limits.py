"""Limits on what one GraphQL document may ask for: directives and cost.

Depth, alias and token limits come from Strawberry's extensions; these two it lacks.
"""

from collections.abc import Iterator, Mapping
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
)
from graphql.validation import ValidationRule
from strawberry.extensions import SchemaExtension

# Connections default to this page size when `first`/`last` is absent, for costing only.
DEFAULT_PAGE_COST = 100
PAGE_ARGUMENTS = ("first", "last")


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

    A field below a connection asked for `first: 50` is fetched up to 50 times.
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


class QueryCost(SchemaExtension):
    """Refuses a document whose cost exceeds the limit and reports the cost in `extensions`."""

    limit: int

    def __init__(self, *, limit: int) -> None:
        self.limit = limit
        self.cost: int | None = None

    def on_validate(self) -> Iterator[None]:
        """After validation, cost the operation that will run."""
        yield
        context = self.execution_context
        if context.pre_execution_errors or context.graphql_document is None:
            return
        chosen = _operation(context.graphql_document, context.operation_name)
        if chosen is None:
            return
        fragments = {
            d.name.value: d
            for d in context.graphql_document.definitions
            if isinstance(d, FragmentDefinitionNode)
        }
        self.cost = query_cost(chosen, fragments, context.variables or {})
        if self.cost > self.limit:
            context.pre_execution_errors = [
                GraphQLError(f"The query costs {self.cost}, over the limit of {self.limit}.")
            ]

    def get_results(self) -> dict[str, Any]:
        """The cost, as clients budget by it."""
        if self.cost is None:
            return {}
        return {"cost": {"requestedQueryCost": self.cost, "maximumAvailable": self.limit}}
