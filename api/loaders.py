"""Per-request dataloaders: every relation is fetched in batches, never one row at a time."""

import uuid
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import TypeVar

from strawberry.dataloader import DataLoader

from domain.identity.models import User, Viewer
from domain.plans.models import Quota
from domain.runs.models import Run, RunAttempt, RunEvent, Task
from infra.bootstrap import Services

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
# A key and a size: the same relation asked for with different sizes is one batch per size.
Sized = tuple[K, int]


async def load_by_size(
    keys: list[Sized[K]], load: Callable[[list[K], int], Awaitable[list[V]]]
) -> list[V]:
    """Values for (key, size) pairs in key order, one `load` call per distinct size."""
    found: dict[Sized[K], V] = {}
    for size in sorted({size for _, size in keys}):
        batch = [key for key, n in keys if n == size]
        found.update(zip(((k, size) for k in batch), await load(batch, size), strict=True))
    return [found[key] for key in keys]


@dataclass(slots=True)
class Loaders:
    """A fresh set of loaders for one request, so nothing leaks between viewers."""

    users: DataLoader[uuid.UUID, User | None]
    tasks: DataLoader[str, Task | None]
    # Visibility applies: a run the viewer may not see loads as None.
    runs: DataLoader[uuid.UUID, Run | None]
    attempts: DataLoader[uuid.UUID, list[RunAttempt]]
    latest_logs: DataLoader[Sized[uuid.UUID], list[RunEvent]]
    creator_runs: DataLoader[Sized[uuid.UUID], list[Run]]
    # Visibility applies: a quota the viewer may not see loads as None.
    quotas: DataLoader[uuid.UUID, Quota | None]

    def prime_runs(self, runs: list[Run]) -> None:
        """Remember runs that a list or a change already read, replacing older copies."""
        self.runs.prime_many({run.id: run for run in runs}, force=True)

    def forget_runs(self) -> None:
        """Drop everything loaded about runs, so that a live update reads them afresh.

        A subscription keeps its loaders for as long as it lives, which may be hours.
        """
        for loader in (self.runs, self.attempts, self.latest_logs, self.creator_runs):
            loader.clear_all()


def build_loaders(services: Services, viewer: Callable[[], Viewer]) -> Loaders:
    """Loaders over the services of this process; `viewer` names the caller when needed."""

    async def load_users(ids: list[uuid.UUID]) -> list[User | None]:
        return await services.identity.get_users(ids)

    async def load_tasks(names: list[str]) -> list[Task | None]:
        return await services.runs.get_tasks(names)

    async def load_runs(ids: list[uuid.UUID]) -> list[Run | None]:
        return await services.runs.get_runs(viewer=viewer(), ids=ids)

    async def load_attempts(ids: list[uuid.UUID]) -> list[list[RunAttempt]]:
        return await services.runs.attempts_of(ids)

    async def load_latest_logs(keys: list[Sized[uuid.UUID]]) -> list[list[RunEvent]]:
        return await load_by_size(keys, lambda ids, n: services.runs.latest_logs(ids, limit=n))

    async def load_creator_runs(keys: list[Sized[uuid.UUID]]) -> list[list[Run]]:
        async def of_creators(ids: list[uuid.UUID], limit: int) -> list[list[Run]]:
            found = await services.runs.runs_of_creators(viewer=viewer(), user_ids=ids, limit=limit)
            loaders.prime_runs([run for group in found for run in group])
            return found

        return await load_by_size(keys, of_creators)

    async def load_quotas(ids: list[uuid.UUID]) -> list[Quota | None]:
        return await services.plans.quotas(viewer=viewer(), user_ids=ids)

    loaders = Loaders(
        users=DataLoader(load_fn=load_users),
        tasks=DataLoader(load_fn=load_tasks),
        runs=DataLoader(load_fn=load_runs),
        attempts=DataLoader(load_fn=load_attempts),
        latest_logs=DataLoader(load_fn=load_latest_logs),
        creator_runs=DataLoader(load_fn=load_creator_runs),
        quotas=DataLoader(load_fn=load_quotas),
    )
    return loaders
