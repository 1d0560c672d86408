"""GraphiQL's browser files, read once and served under a URL that changes with their content."""

import hashlib
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from litestar import Response
from litestar.exceptions import NotFoundException

HERE = Path(__file__).parent
# Our own start-up script, kept out of the page so that no inline script is needed.
OWN_FILES = ("init.js",)
# Litestar adds "; charset=utf-8" to text types itself.
MEDIA_TYPES = {".js": "text/javascript", ".css": "text/css"}
# The URL carries the content's version, so a browser may keep a file for as long as it likes.
IMMUTABLE = "public, max-age=31536000, immutable"


@dataclass(frozen=True, slots=True)
class Asset:
    """One file's bytes as sent, and gzipped when the build made a compressed twin."""

    media_type: str
    body: bytes
    gzipped: bytes | None


@dataclass(frozen=True, slots=True)
class Bundle:
    """Every file the page loads, by name, and a version derived from their contents."""

    files: dict[str, Asset]
    version: str


def built_names() -> list[str]:
    """Names of the files that scripts/build_graphiql.py puts in the static directory."""
    return list(json.loads((HERE / "package.json").read_text())["assets"])


def _read(path: Path) -> Asset:
    twin = path.with_name(f"{path.name}.gz")
    gzipped = twin.read_bytes() if twin.is_file() else None
    return Asset(MEDIA_TYPES[path.suffix], path.read_bytes(), gzipped)


@cache
def load_bundle(static_dir: Path) -> Bundle | None:
    """The files from `static_dir` and this package, or None when the build has not run."""
    built = [static_dir / name for name in built_names()]
    if not all(path.is_file() for path in built):
        return None
    files = {path.name: _read(path) for path in [*built, *(HERE / n for n in OWN_FILES)]}
    digest = hashlib.sha256()
    for name, asset in sorted(files.items()):
        digest.update(name.encode())
        digest.update(asset.body)
    return Bundle(files, digest.hexdigest()[:16])


def accepts_gzip(accept_encoding: str | None) -> bool:
    """Whether an Accept-Encoding header allows gzip (and does not refuse it with q=0)."""
    for part in (accept_encoding or "").lower().split(","):
        coding, _, params = part.partition(";")
        if coding.strip() == "gzip":
            try:
                return float(params.partition("q=")[2].strip() or "1") > 0
            except ValueError:
                return False
    return False


def asset_response(bundle: Bundle, name: str, accept_encoding: str | None) -> Response[bytes]:
    """One file of the bundle, compressed when the client takes it; 404 for anything else."""
    asset = bundle.files.get(name)
    if asset is None:
        raise NotFoundException()
    headers = {"cache-control": IMMUTABLE, "vary": "accept-encoding"}
    if asset.gzipped is not None and accepts_gzip(accept_encoding):
        headers["content-encoding"] = "gzip"
        return Response(asset.gzipped, media_type=asset.media_type, headers=headers)
    return Response(asset.body, media_type=asset.media_type, headers=headers)
