"""The catalog of tasks this worker can run: the built-ins, then any installed packages'.

A deployment adds tasks of its own without settings: it installs a package that declares
an entry point in the `taskyard.tasks` group naming a module, for example in its
pyproject.toml:

    [project.entry-points."taskyard.tasks"]
    billing = "acme_billing.tasks"

Every `@task` declared at the top level of such a module joins the catalog when the
worker starts, and the worker registers the whole catalog in PostgreSQL.
"""

import importlib
from collections.abc import Iterable
from datetime import datetime
from importlib.metadata import entry_points
from types import ModuleType
from typing import Any

from domain.runs.models import Task
from workers.tasks.spec import TaskSpec

ENTRY_POINT_GROUP = "taskyard.tasks"
BUILT_IN_MODULES = ("workers.tasks.demo", "workers.tasks.http")


class Catalog:
    """Task declarations by name."""

    def __init__(self, specs: Iterable[TaskSpec[Any]]) -> None:
        self._specs: dict[str, TaskSpec[Any]] = {}
        for spec in specs:
            known = self._specs.setdefault(spec.name, spec)
            if known is not spec:
                raise ValueError(f"task {spec.name} is declared twice")

    def get(self, name: str) -> TaskSpec[Any] | None:
        """The declaration of task `name`, if this worker has one."""
        return self._specs.get(name)

    @property
    def names(self) -> list[str]:
        """Every task name, sorted."""
        return sorted(self._specs)

    def tasks(self, registered_at: datetime) -> list[Task]:
        """Every task as the catalog in PostgreSQL stores it."""
        return [self._specs[name].describe(registered_at) for name in self.names]


def specs_in(module: ModuleType) -> list[TaskSpec[Any]]:
    """The tasks declared at the top level of `module`."""
    return [value for value in vars(module).values() if isinstance(value, TaskSpec)]


def installed_modules() -> list[ModuleType]:
    """The built-in task modules, then those that installed packages name."""
    modules = [importlib.import_module(name) for name in BUILT_IN_MODULES]
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        loaded = entry.load()
        if not isinstance(loaded, ModuleType):
            raise TypeError(f"entry point {entry.name} of {ENTRY_POINT_GROUP} must name a module")
        modules.append(loaded)
    return modules


def load_catalog(modules: Iterable[ModuleType] | None = None) -> Catalog:
    """The catalog of `modules`, by default of every installed task module."""
    chosen = installed_modules() if modules is None else modules
    return Catalog(spec for module in chosen for spec in specs_in(module))
