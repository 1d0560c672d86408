"""Typed settings, read from `TASKYARD_*` environment variables and an optional `.env` file."""

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

PREFIX = "TASKYARD_"
# Variables with these prefixes belong to the test suite and bootstrap, not to the server.
IGNORED_PREFIXES = ("TASKYARD_TEST_",)
SECRET_FIELDS = frozenset({"database_url", "redis_url", "secret_key", "bootstrap_admin_password"})
DATABASE_SCHEMES = frozenset({"postgresql", "postgres", "postgresql+asyncpg"})
REDIS_SCHEMES = frozenset({"redis", "rediss", "unix"})
MIN_SECRET_KEY = 32


def _doc(text: str) -> msgspec.Meta:
    return msgspec.Meta(description=text)


class Settings(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """Every setting of a Taskyard process."""

    env: Annotated[
        Literal["development", "production", "test"],
        _doc("Deployment mode; production turns GraphiQL and introspection off by default."),
    ] = "development"
    host: Annotated[str, _doc("Address the HTTP server binds to.")] = "127.0.0.1"
    port: Annotated[int, msgspec.Meta(ge=1, le=65535), _doc("HTTP port.")] = 8000
    database_url: Annotated[
        str | None,
        _doc("PostgreSQL URL (postgresql://…). Unset: an embedded server in the data directory."),
    ] = None
    redis_url: Annotated[
        str | None,
        _doc("Redis URL (redis://…). Unset: an embedded redis-server in the data directory."),
    ] = None
    data_dir: Annotated[
        str, _doc("Directory for the embedded PostgreSQL and Redis data and lock files.")
    ] = ".taskyard"
    embedded_postgres_port: Annotated[
        int, msgspec.Meta(ge=1, le=65535), _doc("Port of the embedded PostgreSQL (127.0.0.1).")
    ] = 15432
    embedded_redis_port: Annotated[
        int, msgspec.Meta(ge=1, le=65535), _doc("Port of the embedded Redis (127.0.0.1).")
    ] = 16379
    log_level: Annotated[
        Literal["DEBUG", "INFO", "WARNING", "ERROR"], _doc("Lowest level of log record written.")
    ] = "INFO"
    log_format: Annotated[
        Literal["auto", "json", "text"],
        _doc("Log format; auto is readable text in development and JSON otherwise."),
    ] = "auto"
    max_body_bytes: Annotated[
        int, msgspec.Meta(ge=1024, le=64 * 1024 * 1024), _doc("Largest accepted request body.")
    ] = 1024 * 1024
    graphiql: Annotated[
        bool | None, _doc("Serve GraphiQL at /graphql. Unset: on unless env is production.")
    ] = None
    introspection: Annotated[
        bool | None, _doc("Allow schema introspection. Unset: on unless env is production.")
    ] = None
    db_pool_size: Annotated[
        int, msgspec.Meta(ge=1, le=200), _doc("Connections each process keeps to PostgreSQL.")
    ] = 10
    db_connect_timeout: Annotated[
        float, msgspec.Meta(gt=0, le=60), _doc("Seconds to wait for a database connection.")
    ] = 5.0
    health_timeout: Annotated[
        float, msgspec.Meta(gt=0, le=30), _doc("Seconds each readiness probe may take.")
    ] = 2.0
    worker_concurrency: Annotated[
        int, msgspec.Meta(ge=1, le=1000), _doc("Jobs one worker process runs at once.")
    ] = 10
    worker_heartbeat_interval: Annotated[
        float, msgspec.Meta(gt=0, le=300), _doc("Seconds between a worker's heartbeats.")
    ] = 5.0
    worker_stale_after: Annotated[
        float,
        msgspec.Meta(gt=0, le=3600),
        _doc("Seconds without a heartbeat after which a worker counts as gone."),
    ] = 30.0
    ping_timeout: Annotated[
        float, msgspec.Meta(gt=0, le=60), _doc("Seconds systemPing waits for a worker's reply.")
    ] = 5.0
    run_reaper_interval: Annotated[
        float,
        msgspec.Meta(gt=0, le=3600),
        _doc("Seconds between a worker's sweeps for runs of lost workers and unqueued runs."),
    ] = 5.0
    max_params_bytes: Annotated[
        int,
        msgspec.Meta(ge=1024, le=16 * 1024 * 1024),
        _doc("Largest parameters a run accepts, as compact JSON."),
    ] = 64 * 1024
    max_log_lines_per_run: Annotated[
        int,
        msgspec.Meta(ge=1, le=10_000_000),
        _doc("Log lines one run keeps; later lines are dropped after one notice."),
    ] = 10_000
    subscription_buffer: Annotated[
        int,
        msgspec.Meta(ge=10, le=1_000_000),
        _doc("Live events queued per subscriber before its stream is told to resume."),
    ] = 1000
    quota_timezone: Annotated[
        str,
        _doc("Time zone (IANA name) whose calendar days the daily run quotas count in."),
    ] = "UTC"
    idempotency_window_hours: Annotated[
        int,
        msgspec.Meta(ge=1, le=24 * 365),
        _doc("Hours in which a repeated start with the same idempotency key returns the run."),
    ] = 24

    secret_key: Annotated[
        str | None,
        _doc(
            "Key that signs access tokens, 32+ characters. Unset: generated once into the "
            "data directory, except in production, where it is required."
        ),
    ] = None
    access_token_ttl: Annotated[
        int, msgspec.Meta(ge=60, le=86400), _doc("Seconds an access token stays valid.")
    ] = 900
    refresh_token_ttl: Annotated[
        int,
        msgspec.Meta(ge=3600, le=365 * 86400),
        _doc("Seconds a session lasts without being refreshed."),
    ] = 30 * 86400
    max_sessions_per_user: Annotated[
        int, msgspec.Meta(ge=1, le=1000), _doc("Active sessions per user; the oldest is ended.")
    ] = 10
    bootstrap_admin_email: Annotated[
        str | None,
        _doc("Email of the administrator `taskyard dev` creates when there are no users."),
    ] = None
    bootstrap_admin_password: Annotated[
        str | None, _doc("That administrator's password. Unset: generated and printed once.")
    ] = None

    max_query_depth: Annotated[
        int, msgspec.Meta(ge=1, le=100), _doc("Deepest selection a document may nest.")
    ] = 10
    max_aliases: Annotated[
        int, msgspec.Meta(ge=0, le=1000), _doc("Most aliases in one document.")
    ] = 15
    max_tokens: Annotated[
        int, msgspec.Meta(ge=10, le=100_000), _doc("Most lexical tokens in one document.")
    ] = 1000
    max_directives: Annotated[
        int, msgspec.Meta(ge=0, le=1000), _doc("Most directives in one document.")
    ] = 50
    max_query_cost: Annotated[
        int,
        msgspec.Meta(ge=1, le=10_000_000),
        _doc("Most fields one query may resolve, counting each page item (see the API guide)."),
    ] = 5000
    get_queries: Annotated[
        bool | None, _doc("Accept queries over GET. Unset: on unless env is production.")
    ] = None
    rate_limit_per_minute: Annotated[
        int,
        msgspec.Meta(ge=1, le=1_000_000),
        _doc("Requests a signed-in user or token may make per minute (burst included)."),
    ] = 600
    anonymous_rate_limit_per_minute: Annotated[
        int, msgspec.Meta(ge=1, le=1_000_000), _doc("Requests per minute from one anonymous IP.")
    ] = 120
    login_failures_before_backoff: Annotated[
        int,
        msgspec.Meta(ge=1, le=100),
        _doc("Failed sign-ins per email and IP before each further try must wait, doubling."),
    ] = 5
    ws_init_timeout: Annotated[
        float,
        msgspec.Meta(gt=0, le=60),
        _doc("Seconds a WebSocket may wait before connection_init."),
    ] = 10.0
    ws_max_subscriptions: Annotated[
        int, msgspec.Meta(ge=1, le=1000), _doc("Subscriptions one WebSocket connection may hold.")
    ] = 20
    ws_allowed_origins: Annotated[
        str,
        _doc("Comma-separated origins whose pages may open WebSockets (same origin always may)."),
    ] = ""

    def __post_init__(self) -> None:
        if self.database_url is not None:
            _check_url("database_url", self.database_url, DATABASE_SCHEMES)
        if self.redis_url is not None:
            _check_url("redis_url", self.redis_url, REDIS_SCHEMES)
        if self.secret_key is not None and len(self.secret_key) < MIN_SECRET_KEY:
            raise ValueError(f"{PREFIX}SECRET_KEY: must be at least {MIN_SECRET_KEY} characters")
        if self.is_production and self.secret_key is None:
            raise ValueError(f"{PREFIX}SECRET_KEY: required when {PREFIX}ENV is production")
        _check_zone(self.quota_timezone)

    @property
    def is_production(self) -> bool:
        """Whether the defaults should be those of a production deployment."""
        return self.env == "production"

    @property
    def graphiql_enabled(self) -> bool:
        """GraphiQL is on when set so, and by default outside production."""
        return self.graphiql if self.graphiql is not None else not self.is_production

    @property
    def introspection_enabled(self) -> bool:
        """Introspection is on when set so, and by default outside production."""
        return self.introspection if self.introspection is not None else not self.is_production

    @property
    def get_queries_enabled(self) -> bool:
        """Queries over GET are accepted when set so, and by default outside production."""
        return self.get_queries if self.get_queries is not None else not self.is_production

    @property
    def allowed_origins(self) -> frozenset[str]:
        """The WebSocket origin allow-list as a set."""
        return frozenset(o.strip() for o in self.ws_allowed_origins.split(",") if o.strip())

    @property
    def text_logs(self) -> bool:
        """Whether logs are human-readable text rather than JSON lines."""
        if self.log_format == "auto":
            return self.env == "development"
        return self.log_format == "text"

    @property
    def quota_zone(self) -> ZoneInfo:
        """The time zone of daily quotas."""
        return ZoneInfo(self.quota_timezone)

    @property
    def data_path(self) -> Path:
        """The data directory as an absolute path."""
        return Path(self.data_dir).expanduser().resolve()


class SettingsError(Exception):
    """A setting is unknown or has a bad value; the message is one line for the operator."""


def _check_zone(name: str) -> None:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{PREFIX}QUOTA_TIMEZONE: unknown time zone {name!r}") from None


def _check_url(field: str, url: str, schemes: frozenset[str]) -> None:
    parts = urlsplit(url)
    reason = None
    if parts.scheme not in schemes:
        reason = f"scheme must be one of {', '.join(sorted(schemes))}"
    elif parts.scheme != "unix" and not parts.hostname and "host=" not in parts.query:
        reason = "a host is required"
    else:
        try:
            _ = parts.port
        except ValueError as exc:
            reason = f"bad port: {exc}"
    if reason:
        raise ValueError(f"{PREFIX}{field.upper()}: {reason}")


def read_env_file(path: Path) -> dict[str, str]:
    """Parse a `.env` file of `KEY=value` lines; blank lines and `#` comments are skipped."""
    values: dict[str, str] = {}
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.removeprefix("export ").partition("=")
        if not sep:
            raise SettingsError(f"{path}:{number}: expected KEY=value")
        values[key.strip()] = value.strip().strip("'\"")
    return values


def _field_names() -> dict[str, str]:
    return {f"{PREFIX}{name.upper()}": name for name in Settings.__struct_fields__}


def _collect(environ: Mapping[str, str]) -> dict[str, str]:
    fields = _field_names()
    raw: dict[str, str] = {}
    for key, value in environ.items():
        if not key.startswith(PREFIX) or key.startswith(IGNORED_PREFIXES):
            continue
        if key not in fields:
            raise SettingsError(f"{key}: unknown setting")
        if value != "":
            raw[fields[key]] = value
    return raw


def load_settings(
    environ: Mapping[str, str] | None = None, env_file: Path | None = Path(".env")
) -> Settings:
    """Build settings from the environment over `.env`; raise `SettingsError` on any mistake."""
    merged: dict[str, str] = {}
    if env_file is not None and env_file.is_file():
        merged.update(read_env_file(env_file))
    merged.update(os.environ if environ is None else environ)
    raw = _collect(merged)
    try:
        return msgspec.convert(raw, Settings, strict=False)
    except msgspec.ValidationError as exc:
        raise SettingsError(_explain(exc)) from None


def _explain(exc: msgspec.ValidationError) -> str:
    message = str(exc)
    reason, _, where = message.rpartition(" - at `$.")
    if not reason:
        return message
    field = where.rstrip("`").split(".")[0].split("[")[0]
    return f"{PREFIX}{field.upper()}: {reason}"


def redact_url(url: str) -> str:
    """Hide the password of a URL, keeping everything else readable."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def effective_settings(settings: Settings) -> dict[str, Any]:
    """Every setting by environment variable name, with secrets redacted."""
    values: dict[str, Any] = {}
    for name in Settings.__struct_fields__:
        value = getattr(settings, name)
        if name in SECRET_FIELDS and isinstance(value, str):
            value = redact_url(value) if name.endswith("_url") else "***"
        values[f"{PREFIX}{name.upper()}"] = value
    return values


def settings_table() -> str:
    """Every setting as a Markdown table, as the README shows it."""
    lines = ["| Variable | Default | Meaning |", "| --- | --- | --- |"]
    lines += [
        f"| `{name}` | `{default}` | {meaning} |" for name, default, meaning in describe_settings()
    ]
    return "\n".join(lines)


def describe_settings() -> list[tuple[str, str, str]]:
    """(variable, default, meaning) for every setting, for docs and `--help`."""
    rows = []
    hints = Settings.__annotations__
    for name, default in zip(Settings.__struct_fields__, Settings.__struct_defaults__, strict=True):
        meta = [m for m in getattr(hints[name], "__metadata__", ()) if m.description]
        description = meta[0].description if meta else ""
        shown = "(unset)" if default is None else str(default)
        rows.append((f"{PREFIX}{name.upper()}", shown, description))
    return rows
