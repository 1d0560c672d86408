"""The running Taskyard version."""

from importlib.metadata import PackageNotFoundError, version


def taskyard_version() -> str:
    """The installed package's version, or `0+unknown` when run from a bare checkout."""
    try:
        return version("taskyard")
    except PackageNotFoundError:
        return "0+unknown"
