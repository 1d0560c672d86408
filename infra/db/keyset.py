"""Keyset pagination in both directions, with the neighbours' existence and the total."""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, Row, Select, Table, func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from domain.errors import InvalidInput
from domain.paging import Page, PageRequest

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Keyset(Generic[T]):
    """How one list is ordered, and how a position in it becomes an opaque key and back."""

    table: Table
    # Columns that order the list uniquely, all in one direction.
    columns: tuple[str, ...]
    descending: bool
    convert: Callable[[Row[Any]], T]
    key_of: Callable[[Row[Any]], str]
    # Raises ValueError for a key that is not one of ours.
    parse_key: Callable[[str], tuple[Any, ...]]

    def beyond(self, position: tuple[Any, ...], *, descending: bool) -> ColumnElement[bool]:
        """Rows strictly past `position` when reading in that direction."""
        own = tuple_(*(self.table.c[name] for name in self.columns))
        theirs = tuple_(*position)
        return own < theirs if descending else own > theirs

    def ordered(self, query: Select[Any], *, descending: bool) -> Select[Any]:
        """`query` sorted along the list, or against it."""
        columns = [self.table.c[name] for name in self.columns]
        return query.order_by(*(c.desc() if descending else c.asc() for c in columns))


def _position(keyset: Keyset[Any], request: PageRequest) -> tuple[Any, ...] | None:
    field = "before" if request.backward else "after"
    key = request.before if request.backward else request.after
    if key is None:
        return None
    try:
        return keyset.parse_key(key)
    except ValueError:
        raise InvalidInput("the cursor is not valid", path=[field]) from None


async def read_page(
    db: AsyncSession,
    keyset: Keyset[T],
    conditions: Sequence[ColumnElement[bool]],
    request: PageRequest,
) -> Page[T]:
    """The page `request` asks for among the rows matching `conditions`.

    A backward page is read against the list order from `before` and then turned around,
    so both directions are index scans. One more row than asked tells whether more lie
    ahead; rows on the cursor's other side tell whether any lie behind.
    """
    position = _position(keyset, request)
    # Reading backward means walking the list against its own order.
    descending = keyset.descending != request.backward
    query = select(keyset.table).where(*conditions)
    if position is not None:
        query = query.where(keyset.beyond(position, descending=descending))
    query = keyset.ordered(query, descending=descending).limit(request.size + 1)
    rows = list((await db.execute(query)).all())
    ahead = len(rows) > request.size
    rows = rows[: request.size]
    if request.backward:
        rows.reverse()
    total, behind = await _counts(db, keyset, conditions, position, descending)
    return Page(
        items=[keyset.convert(row) for row in rows],
        keys=[keyset.key_of(row) for row in rows],
        has_next=behind if request.backward else ahead,
        has_previous=ahead if request.backward else behind,
        total_count=total,
    )


async def _counts(
    db: AsyncSession,
    keyset: Keyset[Any],
    conditions: Sequence[ColumnElement[bool]],
    position: tuple[Any, ...] | None,
    descending: bool,
) -> tuple[int, bool]:
    """How many rows match, and whether any lie on the near side of the cursor."""
    query = select(func.count()).select_from(keyset.table).where(*conditions)
    if position is None:
        return int(await db.scalar(query) or 0), False
    near = func.count().filter(~keyset.beyond(position, descending=descending))
    total, near_count = (await db.execute(query.add_columns(near))).one()
    return int(total), int(near_count) > 0
