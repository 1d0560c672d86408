"""Parameters are checked with the real jsonschema library, every failing field reported."""

from typing import Any

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from infra.params import JsonSchemaParamsValidator, field_name


class Item(msgspec.Struct):
    """One line of an order."""

    sku: str
    quantity: int


class Order(msgspec.Struct):
    """Parameters as a task declares them; the schema is generated as the workers do."""

    customer: str
    items: list[Item]
    note: str | None = None


SCHEMA: dict[str, Any] = msgspec.json.schema(Order)
validator = JsonSchemaParamsValidator()


def test_valid_params_have_no_errors() -> None:
    params = {"customer": "ada", "items": [{"sku": "a", "quantity": 2}], "note": None}
    assert validator.errors(SCHEMA, params) == []


def test_every_failing_field_is_reported_with_its_path_and_rule() -> None:
    params = {"customer": 7, "items": [{"sku": "a", "quantity": "two"}, {"quantity": 1}]}
    errors = validator.errors(SCHEMA, params)
    assert sorted(map(str, (path for path, _ in errors))) == sorted(
        map(str, [["customer"], ["items", 0, "quantity"], ["items", 1]])
    )
    messages = dict((tuple(path), message) for path, message in errors)
    assert messages[("customer",)] == "customer: 7 is not of type 'string' (type)"
    assert messages[("items", 0, "quantity")].startswith("items[0].quantity: 'two' is not")
    assert messages[("items", 1)] == "items[1]: 'sku' is a required property (required)"


def test_a_top_level_fault_names_the_parameters_as_a_whole() -> None:
    assert validator.errors(SCHEMA, [1]) == [([], "params: [1] is not of type 'object' (type)")]


def test_formats_are_checked() -> None:
    schema = {"type": "object", "properties": {"id": {"type": "string", "format": "uuid"}}}
    assert validator.errors(schema, {"id": "0b5e7f3a-6c1e-4c9a-9d5e-2f1a4b8c7d6e"}) == []
    [(path, message)] = validator.errors(schema, {"id": "nope"})
    assert (path, message) == (["id"], "id: 'nope' is not a 'uuid' (format)")


def test_equal_schemas_written_in_another_key_order_agree() -> None:
    reordered = {key: SCHEMA[key] for key in reversed(list(SCHEMA))}
    params = {"customer": 1, "items": []}
    assert validator.errors(reordered, params) == validator.errors(SCHEMA, params)


@given(st.lists(st.one_of(st.integers(), st.text(max_size=5)), max_size=6))
def test_field_names_read_like_the_path(path: list[str | int]) -> None:
    name = field_name(path)
    if not path:
        assert name == "params"
    for part in path:
        assert (f"[{part}]" if isinstance(part, int) else str(part)) in name
