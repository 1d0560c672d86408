"""Command-line interface: `taskyard dev|serve|worker|migrate|config|export-schema`."""

import argparse
import sys
from collections.abc import Callable, Sequence

from infra.embedded import EmbeddedError
from infra.settings import SettingsError, load_settings, settings_table
from taskyard import accounts, commands

EPILOG = "Settings come from TASKYARD_* environment variables and ./.env; see `taskyard config`."


def _action(
    steps: "argparse._SubParsersAction[argparse.ArgumentParser]", name: str, summary: str
) -> argparse.ArgumentParser:
    # The summary doubles as the description, so `migrate ACTION --help` says what it does.
    return steps.add_parser(name, help=summary, description=summary[0].upper() + summary[1:] + ".")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="taskyard",
        description="Taskyard: run background work behind a GraphQL API.",
        epilog=EPILOG,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sub.add_parser(
        "dev",
        help="run everything locally: embedded services, migrations, API and a worker",
        description="Start embedded PostgreSQL and Redis when no URLs are set, migrate, then "
        "run the API and one worker until Ctrl-C, restarting any child that dies.",
        epilog=EPILOG,
    )
    sub.add_parser(
        "serve",
        help="run the HTTP API",
        description="Serve GraphQL, GraphiQL, /healthz and /readyz on TASKYARD_HOST:TASKYARD_PORT.",
        epilog=EPILOG,
    )
    sub.add_parser(
        "worker",
        help="run one job worker",
        description="Run an arq worker that executes queued jobs and sends heartbeats.",
        epilog=EPILOG,
    )

    migrate = sub.add_parser(
        "migrate",
        help="upgrade, downgrade or show the database schema",
        description="Manage the database schema with Alembic migrations.",
        epilog=EPILOG,
    )
    steps = migrate.add_subparsers(dest="action", required=True, metavar="ACTION")
    up = _action(steps, "upgrade", "migrate up (default: to the newest revision)")
    up.add_argument("revision", nargs="?", default="head", help="target revision (default: head)")
    down = _action(steps, "downgrade", "migrate down to a revision")
    down.add_argument("revision", help="target revision, or `base` for an empty schema")
    _action(steps, "current", "print the database's revision and the code's head")

    config = sub.add_parser(
        "config",
        help="print the effective settings, secrets redacted",
        description="Print every setting as it would be used now, with passwords redacted.",
    )
    config.add_argument(
        "--describe",
        action="store_true",
        help="list every variable with its default and meaning instead",
    )

    export = sub.add_parser(
        "export-schema",
        help="print the GraphQL schema (SDL)",
        description="Write the GraphQL schema in SDL to stdout or a file.",
    )
    export.add_argument("-o", "--output", help="file to write instead of stdout")
    accounts.add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; operator mistakes end in one line on stderr, never a traceback."""
    args = _parser().parse_args(argv)
    if args.command == "config" and args.describe:
        print(settings_table())
        return 0
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"taskyard: {exc}", file=sys.stderr)
        return 2
    handlers: dict[str, Callable[[argparse.Namespace], int]] = {
        "dev": lambda _: commands.dev(settings),
        "serve": lambda _: commands.serve(settings),
        "worker": lambda _: commands.worker(settings),
        "migrate": lambda a: commands.migrate(settings, a.action, getattr(a, "revision", None)),
        "config": lambda _: commands.config(settings),
        "export-schema": lambda a: commands.export_schema(settings, a.output),
        "users": lambda a: accounts.run(settings, a),
        "tokens": lambda a: accounts.run(settings, a),
    }
    try:
        return handlers[args.command](args)
    except (commands.CommandError, EmbeddedError, accounts.AccountError) as exc:
        print(f"taskyard: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
