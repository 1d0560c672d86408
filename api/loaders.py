"""Per-request dataloaders: every relation is fetched in batches, never one row at a time."""

import uuid
from dataclasses import dataclass

from strawberry.dataloader import DataLoader

from domain.identity.models import User
from infra.bootstrap import Services


@dataclass(slots=True)
class Loaders:
    """A fresh set of loaders for one request, so nothing leaks between viewers."""

    users: DataLoader[uuid.UUID, User | None]


def build_loaders(services: Services) -> Loaders:
    """Loaders over the services of this process."""

    async def load_users(ids: list[uuid.UUID]) -> list[User | None]:
        return await services.identity.get_users(ids)

    return Loaders(users=DataLoader(load_fn=load_users))
