"""Settings come from environment strings and `.env`, and fail with one line naming the variable."""

from datetime import timedelta
from pathlib import Path
from urllib.parse import quote, urlsplit

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from infra.bootstrap import run_policy
from infra.settings import (
    Settings,
    SettingsError,
    effective_settings,
    load_settings,
    read_env_file,
    redact_url,
)

# Each setting's variable, a non-default value as written in the environment, and as parsed.
CASES: dict[str, tuple[str, object]] = {
    "TASKYARD_ENV": ("production", "production"),
    "TASKYARD_QUOTA_TIMEZONE": ("Europe/Paris", "Europe/Paris"),
    "TASKYARD_HOST": ("0.0.0.0", "0.0.0.0"),
    "TASKYARD_PORT": ("8081", 8081),
    "TASKYARD_DATABASE_URL": ("postgresql://app:pw@db.internal:6432/ty",) * 2,
    "TASKYARD_REDIS_URL": ("rediss://cache.internal:6380/2",) * 2,
    "TASKYARD_DATA_DIR": ("/var/lib/taskyard",) * 2,
    "TASKYARD_EMBEDDED_POSTGRES_PORT": ("25432", 25432),
    "TASKYARD_EMBEDDED_REDIS_PORT": ("26379", 26379),
    "TASKYARD_LOG_LEVEL": ("DEBUG", "DEBUG"),
    "TASKYARD_LOG_FORMAT": ("json", "json"),
    "TASKYARD_MAX_BODY_BYTES": ("2048", 2048),
    "TASKYARD_GRAPHIQL": ("true", True),
    "TASKYARD_INTROSPECTION": ("false", False),
    "TASKYARD_DB_POOL_SIZE": ("3", 3),
    "TASKYARD_DB_CONNECT_TIMEOUT": ("1.5", 1.5),
    "TASKYARD_HEALTH_TIMEOUT": ("0.25", 0.25),
    "TASKYARD_WORKER_CONCURRENCY": ("4", 4),
    "TASKYARD_WORKER_HEARTBEAT_INTERVAL": ("2", 2.0),
    "TASKYARD_WORKER_STALE_AFTER": ("12.5", 12.5),
    "TASKYARD_PING_TIMEOUT": ("0.5", 0.5),
    "TASKYARD_RUN_REAPER_INTERVAL": ("0.5", 0.5),
    "TASKYARD_MAX_PARAMS_BYTES": ("2048", 2048),
    "TASKYARD_MAX_LOG_LINES_PER_RUN": ("50", 50),
    "TASKYARD_SUBSCRIPTION_BUFFER": ("20", 20),
    "TASKYARD_IDEMPOTENCY_WINDOW_HOURS": ("2", 2),
    "TASKYARD_SECRET_KEY": ("k" * 40,) * 2,
    "TASKYARD_ACCESS_TOKEN_TTL": ("600", 600),
    "TASKYARD_REFRESH_TOKEN_TTL": ("7200", 7200),
    "TASKYARD_MAX_SESSIONS_PER_USER": ("2", 2),
    "TASKYARD_BOOTSTRAP_ADMIN_EMAIL": ("admin@example.com",) * 2,
    "TASKYARD_BOOTSTRAP_ADMIN_PASSWORD": ("correct horse",) * 2,
    "TASKYARD_MAX_QUERY_DEPTH": ("6", 6),
    "TASKYARD_MAX_ALIASES": ("0", 0),
    "TASKYARD_MAX_TOKENS": ("500", 500),
    "TASKYARD_MAX_DIRECTIVES": ("7", 7),
    "TASKYARD_MAX_QUERY_COST": ("250", 250),
    "TASKYARD_GET_QUERIES": ("false", False),
    "TASKYARD_RATE_LIMIT_PER_MINUTE": ("60", 60),
    "TASKYARD_ANONYMOUS_RATE_LIMIT_PER_MINUTE": ("30", 30),
    "TASKYARD_LOGIN_FAILURES_BEFORE_BACKOFF": ("3", 3),
    "TASKYARD_WS_INIT_TIMEOUT": ("2.5", 2.5),
    "TASKYARD_WS_MAX_SUBSCRIPTIONS": ("5", 5),
    "TASKYARD_WS_ALLOWED_ORIGINS": ("https://a.example,https://b.example",) * 2,
}
NON_DEFAULTS = {variable: text for variable, (text, _) in CASES.items()}
# Built strictly from the parsed values, so a wrongly typed case fails here, not in load().
EXPECTED = msgspec.convert(
    {v.removeprefix("TASKYARD_").lower(): value for v, (_, value) in CASES.items()}, Settings
)


def load(environ: dict[str, str], env_file: Path | None = None) -> Settings:
    """Settings from exactly these variables, never from the real environment."""
    return load_settings(environ, env_file=env_file)


def rejection(environ: dict[str, str], env_file: Path | None = None) -> str:
    """The message of the `SettingsError` these variables cause."""
    with pytest.raises(SettingsError) as caught:
        load(environ, env_file)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_no_variables_give_the_defaults() -> None:
    assert load({}) == Settings()


def test_every_setting_is_read_from_its_variable() -> None:
    assert set(CASES) == set(effective_settings(Settings())), "a setting lacks a case in CASES"
    assert load(NON_DEFAULTS) == EXPECTED


def test_every_default_survives_a_round_trip_through_its_variable() -> None:
    rendered = {
        name: str(value).lower() if isinstance(value, bool) else str(value)
        for name, value in effective_settings(Settings()).items()
        if value is not None
    }
    assert load(rendered) == Settings()


@pytest.mark.parametrize(
    ("text", "expected"),
    [("true", True), ("false", False), ("1", True), ("0", False), ("TRUE", True)],
)
def test_booleans_accept_the_usual_spellings(text: str, expected: bool) -> None:
    assert load({"TASKYARD_GRAPHIQL": text}).graphiql is expected


def test_an_empty_value_means_unset() -> None:
    assert load({"TASKYARD_PORT": "", "TASKYARD_GRAPHIQL": ""}) == Settings()


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("TASKYARD_PORT", "abc"),
        ("TASKYARD_PORT", "80.5"),
        ("TASKYARD_GRAPHIQL", "maybe"),
        ("TASKYARD_HEALTH_TIMEOUT", "soon"),
        ("TASKYARD_HEALTH_TIMEOUT", "0"),
        ("TASKYARD_ENV", "staging"),
        ("TASKYARD_LOG_LEVEL", "verbose"),
        ("TASKYARD_MAX_BODY_BYTES", "10"),
        ("TASKYARD_RUN_REAPER_INTERVAL", "0"),
        ("TASKYARD_MAX_PARAMS_BYTES", "100"),
        ("TASKYARD_SUBSCRIPTION_BUFFER", "1"),
        ("TASKYARD_IDEMPOTENCY_WINDOW_HOURS", "1.5"),
    ],
)
def test_a_bad_value_names_its_variable(variable: str, value: str) -> None:
    assert rejection({variable: value}).startswith(f"{variable}: ")


@pytest.mark.parametrize(
    ("variable", "url", "reason"),
    [
        ("TASKYARD_DATABASE_URL", "mysql://db/taskyard", "scheme"),
        ("TASKYARD_DATABASE_URL", "postgresql:///taskyard", "host"),
        ("TASKYARD_DATABASE_URL", "postgresql://db:port/taskyard", "port"),
        ("TASKYARD_REDIS_URL", "http://cache:6379", "scheme"),
        ("TASKYARD_REDIS_URL", "redis://", "host"),
    ],
)
def test_a_malformed_url_names_its_variable_and_the_fault(
    variable: str, url: str, reason: str
) -> None:
    message = rejection({variable: url})
    assert message.startswith(f"{variable}: ")
    assert reason in message


def test_an_unknown_setting_is_refused_by_name() -> None:
    assert rejection({"TASKYARD_PROT": "8000"}) == "TASKYARD_PROT: unknown setting"


def test_test_suite_and_foreign_variables_are_ignored() -> None:
    environ = {"TASKYARD_TEST_DATABASE_URL": "anything", "PORT": "1", "HOME": "/root"}
    assert load(environ) == Settings()


def test_env_file_understands_comments_export_and_quotes(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(
        "# local overrides\n"
        "\n"
        "export TASKYARD_PORT=8123\n"
        "TASKYARD_HOST = '0.0.0.0'\n"
        'TASKYARD_DATA_DIR="/srv/taskyard data"\n'
        "   # indented comment\n"
    )
    assert read_env_file(env_file) == {
        "TASKYARD_PORT": "8123",
        "TASKYARD_HOST": "0.0.0.0",
        "TASKYARD_DATA_DIR": "/srv/taskyard data",
    }


def test_the_environment_wins_over_env_file(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("TASKYARD_PORT=8123\nTASKYARD_HOST=0.0.0.0\n")
    settings = load({"TASKYARD_PORT": "9000"}, env_file)
    assert (settings.port, settings.host) == (9000, "0.0.0.0")


def test_env_file_mistakes_are_reported_like_the_environment(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("TASKYARD_PORTT=8123\n")
    assert rejection({}, env_file) == "TASKYARD_PORTT: unknown setting"


def test_a_line_without_equals_sign_names_file_and_line(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("TASKYARD_PORT=1\nTASKYARD_HOST\n")
    assert rejection({}, env_file) == f"{env_file}:2: expected KEY=value"


def test_a_missing_env_file_is_fine(tmp_path: Path) -> None:
    assert load({}, tmp_path / "absent.env") == Settings()


def test_effective_settings_hide_passwords_and_keep_the_rest() -> None:
    shown = effective_settings(EXPECTED)
    assert shown["TASKYARD_DATABASE_URL"] == "postgresql://app:***@db.internal:6432/ty"
    assert shown["TASKYARD_REDIS_URL"] == "rediss://cache.internal:6380/2"
    assert shown["TASKYARD_SECRET_KEY"] == "***"
    assert shown["TASKYARD_BOOTSTRAP_ADMIN_PASSWORD"] == "***"
    assert shown["TASKYARD_PORT"] == 8081
    assert set(shown) == {f"TASKYARD_{name.upper()}" for name in Settings.__struct_fields__}


@given(st.integers().filter(lambda n: not 1 <= n <= 65535))
def test_any_port_out_of_range_is_refused_by_name(port: int) -> None:
    assert rejection({"TASKYARD_PORT": str(port)}).startswith("TASKYARD_PORT: ")


@given(st.integers(min_value=1, max_value=65535))
def test_any_valid_port_round_trips(port: int) -> None:
    assert load({"TASKYARD_PORT": str(port)}).port == port


@given(st.floats(max_value=0, allow_nan=False) | st.floats(min_value=30, exclude_min=True))
def test_any_health_timeout_out_of_range_is_refused_by_name(seconds: float) -> None:
    message = rejection({"TASKYARD_HEALTH_TIMEOUT": repr(seconds)})
    assert message.startswith("TASKYARD_HEALTH_TIMEOUT: ")


credentials = st.text(min_size=1, max_size=20)


@given(user=credentials, password=st.text(max_size=20), port=st.integers(1, 65535))
def test_redact_url_never_shows_the_password(user: str, password: str, port: int) -> None:
    url = f"postgresql://{quote(user, safe='')}:{quote(password, safe='')}@db:{port}/taskyard"
    redacted = urlsplit(redact_url(url))
    assert redacted.password == "***"
    original = urlsplit(url)
    kept = ("scheme", "username", "hostname", "port", "path")
    assert [getattr(redacted, a) for a in kept] == [getattr(original, a) for a in kept]


def test_redact_url_leaves_urls_without_password_alone() -> None:
    assert redact_url("redis://cache:6379/0") == "redis://cache:6379/0"


def test_run_settings_become_the_run_policy() -> None:
    policy = run_policy(EXPECTED)
    assert policy.max_params_bytes == 2048
    assert policy.max_log_lines == 50
    assert policy.idempotency_window == timedelta(hours=2)
    assert policy.worker_stale_after == timedelta(seconds=12.5)
