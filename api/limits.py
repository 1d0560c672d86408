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
    GraphQLField,
    GraphQLInterfaceType,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
    VariableNode,
    get_named_type,
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


def _definition(parent: GraphQLNamedType | None, field: FieldNode) -> GraphQLField | None:
    if isinstance(parent, GraphQLObjectType | GraphQLInterfaceType):
        found: GraphQLField | None = parent.fields.get(field.name.value)
        return found
    return None  # __typename, or a type the document names but the schema lacks


def _argument_default(definition: GraphQLField | None, name: str) -> int | None:
    argument = definition.args.get(name) if definition else None
    default = argument.default_value if argument else None
    return default if isinstance(default, int) else None


@dataclass(frozen=True, slots=True)
class _Costing:
    """One operation's document, its schema and its variables, for costing its fields."""

    schema: GraphQLSchema
    fragments: Mapping[str, FragmentDefinitionNode]
    variables: Mapping[str, Any]

    def cost(
        self, selections: SelectionSetNode | None, parent: GraphQLNamedType | None, multiplier: int
    ) -> int:
        """What the fields below `parent` cost when fetched `multiplier` times."""
        total = 0
        for field, definition in self.fields(selections, parent):
            total += multiplier
            size = self.page_size(field, definition)
            child = get_named_type(definition.type) if definition else None
            fetched = multiplier * size if size else multiplier
            total += self.cost(field.selection_set, child, fetched)
        return total

    def fields(
        self,
        selections: SelectionSetNode | None,
        parent: GraphQLNamedType | None,
        seen: frozenset[str] = frozenset(),
    ) -> Iterator[tuple[FieldNode, GraphQLField | None]]:
        """Each field selected, through fragments, with its definition where the schema has it."""
        for selection in selections.selections if selections else ():
            if isinstance(selection, FieldNode):
                yield selection, _definition(parent, selection)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                on = self.schema.get_type(condition.name.value) if condition else parent
                yield from self.fields(selection.selection_set, on, seen)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                if name in self.fragments and name not in seen:
                    fragment = self.fragments[name]
                    on = self.schema.get_type(fragment.type_condition.name.value)
                    yield from self.fields(fragment.selection_set, on, seen | {name})

    def page_size(self, field: FieldNode, definition: GraphQLField | None) -> int | None:
        """How many objects a list field returns: as asked, else by its argument's default."""
        given = {argument.name.value: argument.value for argument in field.arguments or ()}
        for name in PAGE_ARGUMENTS:
            value = given.get(name)
            if isinstance(value, IntValueNode):
                return int(value.value)
            if isinstance(value, VariableNode):
                found = self.variables.get(value.name.value)
                return found if isinstance(found, int) else DEFAULT_PAGE_COST
            if value is None and (default := _argument_default(definition, name)) is not None:
                return default
        return None


def query_cost(
    schema: GraphQLSchema,
    operation: OperationDefinitionNode,
    fragments: Mapping[str, FragmentDefinitionNode],
    variables: Mapping[str, Any],
) -> int:
    """Each field costs 1 for every object it may be fetched for, as GitHub counts nodes.

    A field below a connection asked for `first: 50` is fetched up to 50 times; `count`
    multiplies the same way, and an omitted size counts as its argument's default.
    """
    costing = _Costing(schema, fragments, variables)
    return costing.cost(operation.selection_set, schema.get_root_type(operation.operation), 1)


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
        self.cost = query_cost(context.schema._schema, chosen, fragments, context.variables or {})
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
