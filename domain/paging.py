"""Cursor pagination: what a caller asks for and what a page holds."""

from dataclasses import dataclass
from typing import Generic, TypeVar

from domain.errors import InvalidInput

MAX_PAGE_SIZE = 100
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class PageRequest:
    """The first `first` items after the position `after` (an opaque key)."""

    first: int
    after: str | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.first <= MAX_PAGE_SIZE:
            raise InvalidInput(f"first must be between 1 and {MAX_PAGE_SIZE}", path=["first"])


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """Items in order, the key of each (for cursors), and whether more follow."""

    items: list[T]
    keys: list[str]
    has_next: bool
    total_count: int
