"""Opaque cursors that name the list they belong to, so one cannot be used for another."""

import base64
import binascii

from domain.errors import InvalidInput
from domain.paging import PageRequest


def encode_cursor(kind: str, key: str) -> str:
    """A cursor for the position `key` in lists of `kind`."""
    return base64.urlsafe_b64encode(f"{kind}:{key}".encode()).decode()


def decode_cursor(kind: str, cursor: str | None, *, argument: str) -> str | None:
    """The position a cursor names; a foreign or malformed one is `InvalidInput` at `argument`."""
    if cursor is None:
        return None
    try:
        text = base64.urlsafe_b64decode(cursor.encode()).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        text = ""
    prefix = f"{kind}:"
    if not text.startswith(prefix):
        raise InvalidInput("the cursor is not valid for this list", path=[argument])
    return text[len(prefix) :]


def page_request(
    kind: str,
    *,
    first: int | None = None,
    after: str | None = None,
    last: int | None = None,
    before: str | None = None,
) -> PageRequest:
    """A page request from connection arguments; cursors of another list are refused."""
    return PageRequest(
        first=first,
        after=decode_cursor(kind, after, argument="after"),
        last=last,
        before=decode_cursor(kind, before, argument="before"),
    )
