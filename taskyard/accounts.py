"""`taskyard users create` and `taskyard tokens create`: accounts from the operator's shell."""

import argparse
import asyncio
import secrets
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from domain.errors import DomainError
from domain.identity.models import RequestMeta, Role, Scope
from infra.bootstrap import Services, build_services
from infra.embedded import ServiceUrls, service_urls
from infra.settings import Settings


class AccountError(Exception):
    """An account command was refused; the message is one line."""


Action = Callable[[Services], Awaitable[str]]
# Domain errors name API fields; the operator typed these options.
OPTION_NAMES = {"expiresAt": "expires-in-days", "displayName": "display-name"}


def add_commands(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Register the `users` and `tokens` command groups."""
    users = sub.add_parser("users", help="manage users", description="Manage user accounts.")
    user_actions = users.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = user_actions.add_parser(
        "create",
        help="add a user",
        description="Add a user. Without --password, the password is read from standard input.",
    )
    create.add_argument("--email", required=True)
    create.add_argument("--password", help="at least 12 characters (default: read from stdin)")
    create.add_argument("--role", choices=[r.value for r in Role], default=Role.VIEWER.value)
    create.add_argument("--display-name", help="defaults to the part of the email before @")

    tokens = sub.add_parser(
        "tokens",
        help="manage API tokens",
        description="Manage API tokens for scripts and automation.",
    )
    token_actions = tokens.add_subparsers(dest="action", required=True, metavar="ACTION")
    issue = token_actions.add_parser(
        "create",
        help="make an API token for a user and print its secret once",
        description="Make an API token for a user; the secret is printed once, on stdout.",
    )
    issue.add_argument("--email", required=True, help="the token's owner")
    issue.add_argument("--name", required=True, help="what the token is for")
    issue.add_argument("--scopes", default="read", help="comma-separated: read,write,admin")
    issue.add_argument("--expires-in-days", type=int, help="default: never expires")


def _scopes(text: str) -> frozenset[Scope]:
    try:
        return frozenset(Scope(s.strip()) for s in text.split(",") if s.strip())
    except ValueError:
        raise AccountError(f"--scopes: use read, write or admin, not {text!r}") from None


async def _with(settings: Settings, urls: ServiceUrls, action: Action) -> str:
    """Run `action` over fresh services; a refusal becomes one line naming the option."""
    services = build_services(settings, database_url=urls.database_url, redis_url=urls.redis_url)
    try:
        return await action(services)
    except DomainError as exc:
        field = str(exc.path[-1]) if exc.path else ""
        prefix = f"--{OPTION_NAMES.get(field, field)}: " if field else ""
        raise AccountError(prefix + exc.message) from None
    finally:
        await services.close()


def _run(settings: Settings, action: Action) -> str:
    with service_urls(settings) as urls:
        return asyncio.run(_with(settings, urls, action))


def run(settings: Settings, args: argparse.Namespace) -> int:
    """Carry out `users create` or `tokens create` and print the result."""
    if args.command == "users":
        password = args.password if args.password is not None else sys.stdin.readline().rstrip("\n")

        async def create_user(services: Services) -> str:
            user = await services.identity.create_user(
                actor=None,
                meta=RequestMeta(),
                email=args.email,
                password=password,
                display_name=args.display_name,
                role=Role(args.role),
            )
            return f"created {user.role.value} {user.email} ({user.id})"

        print(_run(settings, create_user))
        return 0
    expires_at = None
    if args.expires_in_days is not None:
        expires_at = datetime.now(UTC) + timedelta(days=args.expires_in_days)
    scopes = _scopes(args.scopes)

    async def issue(services: Services) -> str:
        made = await services.identity.issue_api_token(
            email=args.email, name=args.name, scopes=scopes, expires_at=expires_at
        )
        return made.secret

    print(_run(settings, issue))
    return 0


DEFAULT_ADMIN_EMAIL = "admin@taskyard.local"


def ensure_bootstrap_admin(settings: Settings, urls: ServiceUrls) -> None:
    """On a platform with no users, create the first administrator and say how to sign in.

    The password comes from TASKYARD_BOOTSTRAP_ADMIN_PASSWORD, or is generated and printed
    this once: it is stored only as a hash.
    """
    email = settings.bootstrap_admin_email or DEFAULT_ADMIN_EMAIL
    password = settings.bootstrap_admin_password or secrets.token_urlsafe(18)

    async def create(services: Services) -> str:
        made = await services.identity.ensure_first_admin(email=email, password=password)
        return "created" if made else ""

    if asyncio.run(_with(settings, urls, create)):
        configured = settings.bootstrap_admin_password is not None
        shown = "as set in TASKYARD_BOOTSTRAP_ADMIN_PASSWORD" if configured else password
        print(f"Created the first administrator: {email}  password: {shown}", flush=True)
