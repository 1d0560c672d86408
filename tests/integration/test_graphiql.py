"""GraphiQL loads only files that Taskyard serves itself, and says so when they are missing."""

import os
import re
import shutil
import socket
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

import api.graphiql
from api.graphiql.assets import load_bundle

ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = ROOT / "scripts" / "build_graphiql.py"
BROWSER = {"accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
MEDIA_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}


class References(HTMLParser):
    """Every URL a page asks the browser to load or follow, and whether it has inline script."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline_scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        """Collect URL attributes; count scripts that carry their code inline."""
        values = dict(attrs)
        self.urls += [v for k, v in values.items() if k in ("src", "href", "action") and v]
        if tag == "script" and not values.get("src"):
            self.inline_scripts += 1


@pytest.fixture(scope="module")
def built() -> None:
    """GraphiQL's assets, built (quickly, when they already are) before the app reads them."""
    subprocess.run([sys.executable, str(BUILD_SCRIPT)], check=True, capture_output=True)
    load_bundle.cache_clear()


async def _page(client: httpx.AsyncClient) -> References:
    response = await client.get("/graphql", headers=BROWSER)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "<title>Taskyard GraphiQL</title>" in response.text
    assert "://" not in response.text, "the page names a URL with a host"
    references = References()
    references.feed(response.text)
    return references


def _asset_urls(references: References) -> list[str]:
    return [url for url in references.urls if not url.startswith("data:")]


@pytest.mark.usefixtures("built")
async def test_page_loads_only_local_files_and_no_inline_script(
    client: httpx.AsyncClient,
) -> None:
    references = await _page(client)
    urls = _asset_urls(references)
    assert urls
    for url in urls:
        parts = urlsplit(url)
        assert (parts.scheme, parts.netloc) == ("", ""), url
        assert parts.path.startswith("/graphql/assets/"), url
    assert references.inline_scripts == 0


@pytest.mark.usefixtures("built")
async def test_every_file_the_page_loads_is_served_with_its_type(
    client: httpx.AsyncClient,
) -> None:
    for url in _asset_urls(await _page(client)):
        response = await client.get(url, headers={"accept-encoding": "identity"})
        assert response.status_code == 200, url
        assert response.headers["content-type"] == MEDIA_TYPES[Path(url).suffix], url
        assert "immutable" in response.headers["cache-control"]
        assert response.content


@pytest.mark.usefixtures("built")
async def test_built_files_are_sent_gzipped_to_clients_that_take_it(
    client: httpx.AsyncClient,
) -> None:
    url = next(u for u in _asset_urls(await _page(client)) if u.endswith("graphiql.min.js"))
    plain = await client.get(url, headers={"accept-encoding": "identity"})
    zipped = await client.get(url, headers={"accept-encoding": "gzip"})
    refused = await client.get(url, headers={"accept-encoding": "gzip;q=0"})
    assert "content-encoding" not in plain.headers
    assert zipped.headers["content-encoding"] == "gzip"
    assert zipped.content == plain.content
    assert "content-encoding" not in refused.headers


@pytest.mark.usefixtures("built")
async def test_stylesheet_fetches_nothing_remote(client: httpx.AsyncClient) -> None:
    url = next(u for u in _asset_urls(await _page(client)) if u.endswith(".css"))
    css = (await client.get(url)).text
    assert "@import" not in css
    targets = [t.strip("'\" ") for t in re.findall(r"url\(([^)]*)\)", css)]
    assert targets
    assert all(t.startswith(("data:", "#")) for t in targets), "the stylesheet loads a file"


@pytest.mark.usefixtures("built")
async def test_unknown_files_and_stale_versions_are_not_found(
    client: httpx.AsyncClient,
) -> None:
    url = next(u for u in _asset_urls(await _page(client)) if u.endswith("init.js"))
    version_path = url.rsplit("/", 1)[0]
    assert (await client.get(f"{version_path}/package.json")).status_code == 404
    assert (await client.get(f"{version_path}/..%2Fpage.html")).status_code == 404
    assert (await client.get("/graphql/assets/0000000000000000/init.js")).status_code == 404


@pytest.fixture
def no_assets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An app created after this fixture finds no built GraphiQL assets."""
    monkeypatch.setattr(api.graphiql, "STATIC_DIR", tmp_path)


@pytest.mark.usefixtures("no_assets")
async def test_missing_assets_give_a_page_that_says_how_to_build_them(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get("/graphql", headers=BROWSER)
    query = await client.post("/graphql", json={"query": "{ __typename }"})
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "python scripts/build_graphiql.py" in page.text
    assert query.json()["data"] == {"__typename": "Query"}


@pytest.mark.skipif(shutil.which("npm") is None, reason="needs npm on PATH")
def test_build_fails_in_one_line_when_packages_cannot_be_fetched(tmp_path: Path) -> None:
    stamp = ROOT / "api" / "graphiql" / "static" / ".stamp"
    before = stamp.read_bytes() if stamp.is_file() else None
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{closed.getsockname()[1]}/"
    env = {
        **os.environ,
        "npm_config_registry": dead,
        "npm_config_cache": str(tmp_path / "cache"),
        "npm_config_fetch_retries": "0",
    }
    result = subprocess.run(
        [sys.executable, str(BUILD_SCRIPT), "--force"], env=env, capture_output=True, text=True
    )
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("build_graphiql: cannot fetch GraphiQL's packages: ")
    assert (stamp.read_bytes() if stamp.is_file() else None) == before
