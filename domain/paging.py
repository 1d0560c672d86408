"""Cursor pagination: what a caller asks for and what a page holds."""

from dataclasses import dataclass
from typing import Generic, TypeVar

from domain.errors import InvalidInput

MAX_PAGE_SIZE = 100
T = TypeVar("T")


def _check_size(name: str, value: int | None) -> None:
    if value is not None and not 1 <= value <= MAX_PAGE_SIZE:
        raise InvalidInput(f"{name} must be between 1 and {MAX_PAGE_SIZE}", path=[name])


@dataclass(frozen=True, slots=True)
class PageRequest:
    """Either the first `first` items after `after`, or the last `last` items before `before`.

    Positions are opaque keys. Exactly one of `first` and `last` is given, as GitHub requires,
    so that no list can be read whole by accident.
    """

    first: int | None = None
    after: str | None = None
    last: int | None = None
    before: str | None = None

    def __post_init__(self) -> None:
        if (self.first is None) == (self.last is None):
            raise InvalidInput("give either first or last (1 to 100)", path=["first"])
        _check_size("first", self.first)
        _check_size("last", self.last)

    @property
    def size(self) -> int:
        """How many items the page holds at most."""
        return self.first if self.first is not None else self.last or 0

    @property
    def backward(self) -> bool:
        """Whether the page is read from the end (`last`/`before`)."""
        return self.last is not None


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """Items in list order, the key of each (for cursors), and whether more lie either side."""

    items: list[T]
    keys: list[str]
    has_next: bool
    total_count: int
    has_previous: bool = False
