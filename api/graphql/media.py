"""Content negotiation for GraphQL over HTTP."""

JSON = "application/json"
GRAPHQL_RESPONSE = "application/graphql-response+json"
HTML = "text/html"


def _ranges(accept: str) -> list[tuple[str, float]]:
    ranges = []
    for part in accept.split(","):
        media, *params = (p.strip() for p in part.split(";"))
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if media:
            ranges.append((media.lower(), quality))
    return ranges


def negotiate(accept: str | None) -> str | None:
    """The response media type for an Accept header, or None when nothing we offer fits.

    With no Accept header, the spec asks us to answer as if `application/json` was asked for.
    """
    if not accept:
        return JSON
    best, best_quality = None, 0.0
    for media, quality in _ranges(accept):
        if quality <= best_quality:
            continue
        if media == GRAPHQL_RESPONSE:
            best, best_quality = GRAPHQL_RESPONSE, quality
        elif media in (JSON, "application/*", "*/*"):
            best, best_quality = JSON, quality
    return best


def prefers_html(accept: str | None) -> bool:
    """Whether a browser is asking for a page rather than a GraphQL response."""
    return bool(accept) and any(
        media == HTML and quality > 0 for media, quality in _ranges(accept or "")
    )


def is_json_body(content_type: str | None) -> bool:
    """Whether a request body is declared as UTF-8 JSON, the only body we accept."""
    if not content_type:
        return False
    media, *params = (p.strip().lower() for p in content_type.split(";"))
    if media != JSON:
        return False
    charsets = [p.partition("=")[2].strip('"') for p in params if p.startswith("charset=")]
    return all(c in ("utf-8", "utf8") for c in charsets)
