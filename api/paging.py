"""Opaque cursors that name the list they belong to, so one cannot be used for another."""

import base64
import binascii

from domain.errors import InvalidInput


def encode_cursor(kind: str, key: str) -> str:
    """A cursor for the position `key` in lists of `kind`."""
    return base64.urlsafe_b64encode(f"{kind}:{key}".encode()).decode()


def decode_cursor(kind: str, cursor: str | None) -> str | None:
    """The position a cursor names; a foreign or malformed cursor is `InvalidInput`."""
    if cursor is None:
        return None
    try:
        text = base64.urlsafe_b64decode(cursor.encode()).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        text = ""
    prefix = f"{kind}:"
    if not text.startswith(prefix):
        raise InvalidInput("the cursor is not valid for this list", path=["after"])
    return text[len(prefix) :]
