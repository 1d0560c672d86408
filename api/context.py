"""The per-request GraphQL context: services, loaders, the viewer and where the call came from."""

from dataclasses import dataclass, field, replace
from typing import Any

import strawberry
from litestar import WebSocket

from api.loaders import Loaders, build_loaders
from domain.audit import Attempt
from domain.errors import Unauthenticated
from domain.identity.models import RequestMeta, Viewer
from domain.limits import Budget
from infra.bootstrap import Services

BEARER = "bearer "
SIGN_IN_FIRST = "sign in first: send Authorization: Bearer <token>"


@dataclass(slots=True)
class Context:
    """What every resolver may use."""

    services: Services
    request_id: str | None
    viewer: Viewer | None = None
    meta: RequestMeta = field(default_factory=RequestMeta)
    loaders: Loaders | None = None
    # The caller's rate budget after admitting this request.
    budget: Budget | None = None
    # Set by the WebSocket handler from `connection_init`.
    connection_params: dict[str, Any] | None = None
    # The connection, for subscriptions; None over HTTP.
    socket: WebSocket[Any, Any, Any] | None = None

    def __post_init__(self) -> None:
        if self.loaders is None:
            # The viewer is read at load time: over WebSocket it is set after the context.
            self.loaders = build_loaders(self.services, self.require_viewer)

    def for_operation(self) -> "Context":
        """A copy for one operation of a WebSocket, which otherwise shares one context.

        Each operation gets loaders of its own, so nothing it caches outlives it.
        """
        return replace(self, loaders=None)

    def require_viewer(self) -> Viewer:
        """The signed-in caller, or `Unauthenticated`."""
        if self.viewer is None:
            raise Unauthenticated(SIGN_IN_FIRST)
        return self.viewer

    async def viewer_for(self, action: str, target_type: str | None = None) -> Viewer:
        """The signed-in caller of a mutation; an anonymous attempt is audited, then refused."""
        if self.viewer is None:
            error = Unauthenticated(SIGN_IN_FIRST)
            await self.services.auditor.refuse(Attempt(action, target_type, None, self.meta), error)
            raise error
        return self.viewer

    @property
    def load(self) -> Loaders:
        """This request's loaders."""
        assert self.loaders is not None
        return self.loaders


# What every resolver is given: this context, and no root value.
Info = strawberry.Info[Context, None]


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer …` header; a malformed header is refused."""
    if authorization is None:
        return None
    if not authorization.lower().startswith(BEARER) or not authorization[len(BEARER) :].strip():
        raise Unauthenticated("use the header Authorization: Bearer <token>")
    return authorization[len(BEARER) :].strip()
