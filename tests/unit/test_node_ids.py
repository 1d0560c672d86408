"""Global IDs: the UUID a node ID holds, and IDs of the wrong type refused at their argument."""

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st
from strawberry import relay

from api.nodes import node_uuid, object_uuid, pick_nodes
from domain import errors as domain


@given(st.uuids())
def test_a_node_id_holding_a_uuid_gives_it_back(value: uuid.UUID) -> None:
    assert node_uuid(str(value)) == value


@pytest.mark.parametrize("node_id", ["", "42", "Run:1", f"{uuid.UUID(int=1)}x", "ada@example"])
def test_a_node_id_holding_no_uuid_gives_none(node_id: str) -> None:
    assert node_uuid(node_id) is None


@given(st.uuids())
def test_a_global_id_of_the_named_type_gives_its_uuid(value: uuid.UUID) -> None:
    global_id = relay.GlobalID("Run", str(value))
    assert object_uuid(global_id, "Run", path=["id"]) == value
    assert object_uuid(str(global_id), "Run", path=["id"]) == value


@pytest.mark.parametrize(
    "given_id",
    [
        str(relay.GlobalID("User", str(uuid.UUID(int=1)))),
        str(relay.GlobalID("Run", "not-a-uuid")),
        "not base64 at all",
        "",
    ],
    ids=["another-type", "no-uuid-inside", "malformed", "empty"],
)
def test_any_other_id_is_bad_input_at_its_argument(given_id: str) -> None:
    with pytest.raises(domain.InvalidInput) as refused:
        object_uuid(given_id, "Run", path=["filter", "runId"])
    assert refused.value.path == ["filter", "runId"]


class Owned:
    """A domain object with an ID, as sessions and tokens are."""

    def __init__(self, n: int) -> None:
        self.id = uuid.UUID(int=n)


def test_picked_nodes_follow_the_ids_order_with_none_for_others() -> None:
    own = [Owned(1), Owned(2)]
    wanted = [str(uuid.UUID(int=2)), "junk", str(uuid.UUID(int=3)), str(uuid.UUID(int=1))]
    assert pick_nodes(wanted, own) == [own[1], None, None, own[0]]
