"""The name under which a request's operation is logged."""

from functools import lru_cache

from graphql import GraphQLError, OperationDefinitionNode, parse

from api.schema import DOCUMENT_CACHE_SIZE


@lru_cache(maxsize=DOCUMENT_CACHE_SIZE)
def _only_operation_name(query: str) -> str | None:
    try:
        document = parse(query, no_location=True)
    except GraphQLError:
        return None
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if len(operations) == 1 and operations[0].name is not None:
        return operations[0].name.value
    return None


def operation_label(query: str, operation_name: str | None) -> str | None:
    """The operation that runs: the requested one, else the name of the document's only one.

    Call it only for a document that executed: it parses again on a cache miss, and a
    document the schema accepted is bounded by the schema's own parsing limits.
    """
    return operation_name if operation_name is not None else _only_operation_name(query)
