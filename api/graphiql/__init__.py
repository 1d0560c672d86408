"""GraphiQL, served with every asset from Taskyard itself so it works offline."""

from pathlib import Path

from litestar.handlers import BaseRouteHandler

STATIC_DIR = Path(__file__).parent / "static"
PAGE = Path(__file__).parent / "page.html"


def graphiql_page() -> str:
    """The GraphiQL HTML page."""
    return PAGE.read_text()


def graphiql_routes() -> list[BaseRouteHandler]:
    """Route handlers serving GraphiQL's assets (scripts, styles) from this package."""
    return []
