"""GraphiQL, served with every asset from Taskyard itself so it works offline."""

import logging
from pathlib import Path
from string import Template
from typing import Any

from litestar import Request, Response, get
from litestar.handlers import BaseRouteHandler
from litestar.params import FromPath

from api.graphiql.assets import asset_response, load_bundle

STATIC_DIR = Path(__file__).parent / "static"
PAGE = Path(__file__).parent / "page.html"
MISSING_PAGE = Path(__file__).parent / "missing.html"
ASSETS_PATH = "/graphql/assets"

logger = logging.getLogger(__name__)


def graphiql_page() -> str:
    """The GraphiQL HTML page, or a page telling the operator how to build its assets."""
    bundle = load_bundle(STATIC_DIR)
    if bundle is None:
        logger.warning("GraphiQL assets are missing: run `python scripts/build_graphiql.py`")
        return MISSING_PAGE.read_text()
    return Template(PAGE.read_text()).substitute(assets=f"{ASSETS_PATH}/{bundle.version}")


def graphiql_routes() -> list[BaseRouteHandler]:
    """Route handlers serving GraphiQL's assets (scripts, styles) from this package."""
    bundle = load_bundle(STATIC_DIR)
    if bundle is None:
        return []

    @get(f"{ASSETS_PATH}/{bundle.version}/{{name:str}}", include_in_schema=False)
    async def graphiql_asset(
        name: FromPath[str], request: Request[Any, Any, Any]
    ) -> Response[bytes]:
        return asset_response(bundle, name, request.headers.get("accept-encoding"))

    return [graphiql_asset]
