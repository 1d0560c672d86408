"""Fixtures of the API tests: an operator who may start runs, and the app on a real socket."""

from collections.abc import AsyncIterator

import pytest
from litestar import Litestar

from domain.identity.models import Role
from infra.bootstrap import Services
from tests.conftest import register_tasks, sign_in
from tests.live import served


@pytest.fixture
async def operator(services: Services) -> str:
    """An operator's access token (on the free plan), with the built-in tasks registered."""
    await register_tasks(services)
    return await sign_in(services, Role.OPERATOR)


@pytest.fixture
async def ws_url(app: Litestar) -> AsyncIterator[str]:
    """The test's app served by uvicorn on a free loopback port, in this event loop."""
    async with served(app) as url:
        yield url
