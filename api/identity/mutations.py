"""Identity mutations: sign-in, sessions, API tokens and users; each returns a payload."""

import strawberry
from strawberry import relay

from api.context import Info
from api.errors import run_mutation
from api.identity.types import (
    ApiToken,
    ApiTokenPayload,
    CreateApiTokenInput,
    CreateApiTokenPayload,
    CreateUserInput,
    LoginInput,
    RefreshSessionInput,
    RevokeOtherSessionsPayload,
    Session,
    SessionPayload,
    SignInPayload,
    User,
    UserPayload,
    Viewer,
)
from api.nodes import object_uuid
from domain.errors import Unauthenticated
from domain.identity.models import Viewer as DomainViewer
from domain.identity.rules import effective_scopes
from domain.identity.services import IdentityAction, SignedIn


def _signed_in(result: SignedIn) -> SignInPayload:
    viewer = DomainViewer(
        user=result.user, scopes=effective_scopes(result.user.role), session_id=result.session.id
    )
    return SignInPayload(
        access_token=result.access_token,
        access_token_expires_at=result.access_expires_at,
        refresh_token=result.refresh_token,
        viewer=Viewer.from_domain(viewer),
    )


@strawberry.type
class IdentityMutation:
    @strawberry.mutation(description="Sign in with email and password; opens a session.")
    async def login(self, info: Info, input: LoginInput) -> SignInPayload:
        identity, meta = info.context.services.identity, info.context.meta

        async def act() -> SignInPayload:
            signed = await identity.login(email=input.email, password=input.password, meta=meta)
            return _signed_in(signed)

        return await run_mutation(act, SignInPayload, expected=(Unauthenticated,))

    @strawberry.mutation(description="Trade a refresh token for new tokens; each works once.")
    async def refresh_session(self, info: Info, input: RefreshSessionInput) -> SignInPayload:
        identity, meta = info.context.services.identity, info.context.meta

        async def act() -> SignInPayload:
            return _signed_in(await identity.refresh(refresh_token=input.refresh_token, meta=meta))

        return await run_mutation(act, SignInPayload, expected=(Unauthenticated,))

    @strawberry.mutation(description="End the current session; its tokens stop working at once.")
    async def logout(self, info: Info) -> SessionPayload:
        context = info.context

        async def act() -> SessionPayload:
            viewer = await context.viewer_for(IdentityAction.LOGOUT, "Session")
            session = await context.services.identity.logout(viewer=viewer, meta=context.meta)
            return SessionPayload(session=Session.from_domain(session, viewer))

        return await run_mutation(act, SessionPayload, root=())

    @strawberry.mutation(description="End one of your sessions.")
    async def revoke_session(self, info: Info, id: relay.GlobalID) -> SessionPayload:
        context = info.context

        async def act() -> SessionPayload:
            viewer = await context.viewer_for(IdentityAction.REVOKE_SESSION, "Session")
            session = await context.services.identity.revoke_session(
                viewer=viewer, meta=context.meta, session_id=object_uuid(id, "Session", path=["id"])
            )
            return SessionPayload(session=Session.from_domain(session, viewer))

        return await run_mutation(act, SessionPayload, root=())

    @strawberry.mutation(description="End every session of yours except this one.")
    async def revoke_other_sessions(self, info: Info) -> RevokeOtherSessionsPayload:
        context = info.context

        async def act() -> RevokeOtherSessionsPayload:
            count = await context.services.identity.revoke_other_sessions(
                viewer=await context.viewer_for(IdentityAction.REVOKE_OTHER_SESSIONS, "User"),
                meta=context.meta,
            )
            return RevokeOtherSessionsPayload(revoked_count=count)

        return await run_mutation(act, RevokeOtherSessionsPayload)

    @strawberry.mutation(description="Make an API token for scripts; the secret is shown once.")
    async def create_api_token(
        self, info: Info, input: CreateApiTokenInput
    ) -> CreateApiTokenPayload:
        context = info.context

        async def act() -> CreateApiTokenPayload:
            made = await context.services.identity.create_api_token(
                viewer=await context.viewer_for(IdentityAction.CREATE_API_TOKEN, "ApiToken"),
                meta=context.meta,
                name=input.name,
                scopes=frozenset(input.scopes),
                expires_at=input.expires_at,
            )
            return CreateApiTokenPayload(token=ApiToken.from_domain(made.token), secret=made.secret)

        return await run_mutation(act, CreateApiTokenPayload)

    @strawberry.mutation(description="Revoke an API token; it stops working at once.")
    async def revoke_api_token(self, info: Info, id: relay.GlobalID) -> ApiTokenPayload:
        context = info.context

        async def act() -> ApiTokenPayload:
            token = await context.services.identity.revoke_api_token(
                viewer=await context.viewer_for(IdentityAction.REVOKE_API_TOKEN, "ApiToken"),
                meta=context.meta,
                token_id=object_uuid(id, "ApiToken", path=["id"]),
            )
            return ApiTokenPayload(token=ApiToken.from_domain(token))

        return await run_mutation(act, ApiTokenPayload, root=())

    @strawberry.mutation(description="Add a user. Administrators only.")
    async def create_user(self, info: Info, input: CreateUserInput) -> UserPayload:
        context = info.context

        async def act() -> UserPayload:
            user = await context.services.identity.create_user(
                actor=await context.viewer_for(IdentityAction.CREATE_USER, "User"),
                meta=context.meta,
                email=input.email,
                password=input.password,
                display_name=input.display_name,
                role=input.role,
            )
            return UserPayload(user=User.from_domain(user))

        return await run_mutation(act, UserPayload)
