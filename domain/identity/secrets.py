"""Opaque secrets: how they are made and how they are stored."""

import hashlib
import secrets

API_TOKEN_PREFIX = "tky_"  # noqa: S105 - a public marker, not a secret
REFRESH_TOKEN_PREFIX = "tkr_"  # noqa: S105 - a public marker, not a secret
# Shown in listings so a user can tell tokens apart without the secret.
VISIBLE_PREFIX_LENGTH = len(API_TOKEN_PREFIX) + 6


def new_secret(prefix: str) -> str:
    """A 256-bit random secret with a recognizable prefix."""
    return prefix + secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    """The stored form of a high-entropy secret; a fast hash is enough at 256 bits."""
    return hashlib.sha256(secret.encode()).hexdigest()
