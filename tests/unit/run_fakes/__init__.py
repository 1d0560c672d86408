"""In-memory fakes of the run ports, and a world that wires them to the run services."""

import uuid
from collections.abc import Callable
from typing import Any

from domain.identity.models import Role, Scope, User, Viewer
from domain.identity.rules import ROLE_SCOPES
from domain.runs.execution import RunExecutor
from domain.runs.models import Task, TaskDefaults
from domain.runs.policy import RunPolicy
from domain.runs.recovery import RunRecovery
from domain.runs.services import RunService
from tests.unit.run_fakes.ports import EPOCH, FakeBus, FakeClock, FakeParamsValidator, FakeQueue
from tests.unit.run_fakes.store import FakeStore

__all__ = ["EPOCH", "FakeParamsValidator", "World", "make_task", "make_viewer"]


def make_viewer(role: Role = Role.OPERATOR, scopes: frozenset[Scope] | None = None) -> Viewer:
    """A signed-in viewer with a fresh user of `role`; scopes default to the role's."""
    user = User(
        id=uuid.uuid4(),
        email=f"{uuid.uuid4().hex[:8]}@example.com",
        display_name="someone",
        role=role,
        plan="free",
        password_hash="x",
        is_active=True,
        created_at=EPOCH,
    )
    return Viewer(user=user, scopes=ROLE_SCOPES[role] if scopes is None else scopes)


SUM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["a", "b"],
    "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
}


def make_task(name: str = "sum", **defaults: Any) -> Task:
    """A task adding two integers, with given defaults."""
    return Task(
        name=name,
        description="adds two numbers",
        params_schema=SUM_SCHEMA,
        defaults=TaskDefaults(**defaults),
        registered_at=EPOCH,
    )


class World:
    """The run services over fakes, sharing one store, clock, queue and bus."""

    def __init__(self, policy: RunPolicy | None = None, rand: Callable[[], float] = lambda: 0.5):
        self.policy = policy or RunPolicy()
        self.store = FakeStore()
        self.clock = FakeClock()
        self.queue = FakeQueue(self.store)
        self.bus = FakeBus(self.store)
        self.service = RunService(
            uow=self.store,
            queue=self.queue,
            bus=self.bus,
            validator=FakeParamsValidator(),
            clock=self.clock,
            policy=self.policy,
        )
        self.executor = RunExecutor(
            uow=self.store,
            queue=self.queue,
            bus=self.bus,
            clock=self.clock,
            policy=self.policy,
            rand=rand,
        )
        self.recovery = RunRecovery(
            uow=self.store,
            queue=self.queue,
            bus=self.bus,
            clock=self.clock,
            policy=self.policy,
            rand=rand,
        )
