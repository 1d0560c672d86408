"""Global object IDs: reading them, and resolving the objects they name for the viewer."""

import inspect
import uuid
from collections.abc import Iterable, Sequence
from typing import Protocol, Self, TypeVar

from strawberry import relay
from strawberry.dataloader import DataLoader

from api.context import Info
from domain.errors import InvalidInput
from domain.identity.models import Viewer

T = TypeVar("T")


class Identified(Protocol):
    """A domain object with a UUID."""

    @property
    def id(self) -> uuid.UUID:
        """The object's ID."""
        ...


D = TypeVar("D", bound=Identified)


def node_uuid(node_id: str) -> uuid.UUID | None:
    """The UUID inside a node ID string, or None when it holds none."""
    try:
        return uuid.UUID(node_id)
    except ValueError:
        return None


def object_uuid(value: relay.GlobalID | str, type_name: str, *, path: list[str]) -> uuid.UUID:
    """The UUID inside a global ID of `type_name`; any other ID is `InvalidInput` at `path`."""
    try:
        global_id = value if isinstance(value, relay.GlobalID) else relay.GlobalID.from_id(value)
    except (ValueError, TypeError):
        global_id = None
    found = node_uuid(global_id.node_id) if global_id and global_id.type_name == type_name else None
    if found is None:
        raise InvalidInput(f"not a {type_name} ID", path=path)
    return found


async def node_by_id(info: Info, node_id: relay.GlobalID) -> relay.Node | None:
    """The object a global ID names, if it exists and the viewer may see it."""
    try:
        node_type = node_id.resolve_type(info)
    except Exception:  # noqa: BLE001 - an unknown type name is simply no object
        return None
    nodes = node_type.resolve_nodes(info=info, node_ids=[node_id.node_id], required=False)
    if inspect.isawaitable(nodes):
        nodes = await nodes
    return next(iter(nodes), None)


async def load_nodes(
    loader: DataLoader[uuid.UUID, T | None], node_ids: Sequence[str]
) -> list[T | None]:
    """What `loader` finds for each node ID, in ID order; None for an ID holding no UUID."""
    ids = [node_uuid(node_id) for node_id in node_ids]
    found = iter(await loader.load_many([i for i in ids if i]))
    return [next(found) if i else None for i in ids]


def pick_nodes(node_ids: Sequence[str], candidates: Iterable[D]) -> list[D | None]:
    """Those of `candidates` that the node IDs name, in ID order; None for any other ID."""
    by_id = {str(candidate.id): candidate for candidate in candidates}
    return [by_id.get(node_id) for node_id in node_ids]


class SignedInNode(relay.Node):
    """A node only signed-in callers may resolve, each as far as the type lets them see."""

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[Self | None]:
        """The nodes in ID order, None for any the viewer may not see; anonymous is refused."""
        return await cls.resolve_visible(info, info.context.require_viewer(), list(node_ids))

    @classmethod
    async def resolve_visible(
        cls, info: Info, viewer: Viewer, node_ids: list[str]
    ) -> list[Self | None]:
        """The nodes in ID order, None for any `viewer` may not see; each type says which."""
        raise NotImplementedError
