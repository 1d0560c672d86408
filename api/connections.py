"""Relay connections, the one shape of every list: edges with cursors, page info and a total."""

from collections.abc import Callable
from typing import Any, Generic, TypeVar

import strawberry

from api.paging import encode_cursor
from domain.paging import Page

T = TypeVar("T")
D = TypeVar("D")


@strawberry.type(description="Where a page lies in its list, in both directions.")
class PageInfo:
    has_next_page: bool = strawberry.field(description="Whether more items follow the page.")
    has_previous_page: bool = strawberry.field(description="Whether items precede the page.")
    start_cursor: str | None = strawberry.field(description="The first item's cursor.")
    end_cursor: str | None = strawberry.field(description="The last item's cursor.")


@strawberry.type(description="One item of a list, with the cursor that marks its place.")
class Edge(Generic[T]):
    cursor: str = strawberry.field(description="Give it as after or before to page on.")
    node: T


@strawberry.type
class Connection(Generic[T]):
    edges: list[Edge[T]] = strawberry.field(description="The page's items in list order.")
    page_info: PageInfo = strawberry.field(description="Where the page lies.")
    total_count: int = strawberry.field(description="How many items the whole list holds.")


C = TypeVar("C", bound=Connection[Any])


def connection_of(cls: type[C], kind: str, page: Page[D], view: Callable[[D], Any]) -> C:
    """A connection of class `cls` holding a page, each item shown through `view`."""
    cursors = [encode_cursor(kind, key) for key in page.keys]
    return cls(
        edges=[Edge(cursor=c, node=view(i)) for i, c in zip(page.items, cursors, strict=True)],
        page_info=PageInfo(
            has_next_page=page.has_next,
            has_previous_page=page.has_previous,
            start_cursor=cursors[0] if cursors else None,
            end_cursor=cursors[-1] if cursors else None,
        ),
        total_count=page.total_count,
    )
