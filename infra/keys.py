"""The signing key: configured, or made once and kept in the data directory."""

import os
import secrets
from pathlib import Path

from infra.settings import Settings

KEY_FILE = "secret_key"


def signing_key(settings: Settings) -> str:
    """The configured key, or the data directory's own, created on first use (mode 0600)."""
    if settings.secret_key is not None:
        return settings.secret_key
    path = settings.data_path / KEY_FILE
    if not path.exists():
        _create(path)
    return path.read_text().strip()


def _create(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # O_EXCL: when two processes start at once, one writes and the other reads its key.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_urlsafe(48))
