"""Declaring tasks and loading the catalog: names, descriptions, schemas, entry points."""

import sys
from datetime import UTC, datetime
from importlib.metadata import EntryPoint
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.runs.models import Priority, TaskDefaults
from workers.tasks import catalog as catalog_module
from workers.tasks.catalog import ENTRY_POINT_GROUP, Catalog, load_catalog, specs_in
from workers.tasks.context import TaskContext
from workers.tasks.errors import InvalidParams
from workers.tasks.spec import params_schema, task

BUILT_INS = {"demo.count", "demo.fail", "http.request"}


class Point(msgspec.Struct, rename="camel"):
    x_value: int
    y_value: int


class Shape(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    """A shape made of points."""

    corner_points: list[Point]
    label: str = ""


# Declared at the top level, so that this module can stand in for a deployment's package.
@task("acme.shapes.draw", params=Shape, defaults=TaskDefaults(priority=Priority.LOW))
async def draw(ctx: TaskContext[Shape]) -> int:
    """Draw a shape."""
    return len(ctx.params.corner_points)


def refs(node: Any) -> list[str]:
    """Every `$ref` anywhere in a JSON document."""
    if isinstance(node, dict):
        own = [node["$ref"]] if "$ref" in node else []
        return own + [r for value in node.values() for r in refs(value)]
    if isinstance(node, list):
        return [r for value in node for r in refs(value)]
    return []


def assert_self_contained(schema: dict[str, Any]) -> None:
    assert schema["type"] == "object"
    assert "$ref" not in schema
    for ref in refs(schema):
        assert ref.startswith("#/$defs/")
        assert ref.removeprefix("#/$defs/") in schema["$defs"]


def test_the_built_in_tasks_are_in_the_catalog() -> None:
    assert set(load_catalog().names) >= BUILT_INS


def test_catalog_entries_carry_schema_description_and_defaults() -> None:
    at = datetime(2025, 1, 1, tzinfo=UTC)
    entries = {t.name: t for t in load_catalog().tasks(at)}
    http = entries["http.request"]
    assert http.defaults.max_attempts == 5
    assert http.registered_at == at
    assert http.description.startswith("Send an HTTP request")
    for entry in entries.values():
        assert_self_contained(entry.params_schema)


def test_the_count_schema_uses_camel_case_with_bounds() -> None:
    schema = load_catalog().get("demo.count")
    assert schema is not None
    document = schema.params_schema()
    assert document["required"] == ["to"]
    assert document["additionalProperties"] is False
    assert document["properties"]["to"] == {
        "type": "integer",
        "minimum": 1,
        "maximum": 100_000,
        "description": "The number to count to.",
    }
    assert document["properties"]["delayMs"]["default"] == 100


def test_the_http_schema_limits_method_url_and_timeout() -> None:
    spec = load_catalog().get("http.request")
    assert spec is not None
    properties = spec.params_schema()["properties"]
    assert set(properties["method"]["enum"]) == {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"}
    assert properties["url"]["pattern"].startswith("^https?://")
    assert (properties["timeoutSeconds"]["minimum"], properties["timeoutSeconds"]["maximum"]) == (
        0.1,
        120,
    )


def test_nested_models_stay_in_defs_that_references_reach() -> None:
    schema = params_schema(Shape)
    assert_self_contained(schema)
    assert set(schema["$defs"]) == {"Point"}
    assert schema["description"] == "A shape made of points."
    assert schema["properties"]["cornerPoints"]["items"] == {"$ref": "#/$defs/Point"}


@given(to=st.integers(1, 100_000), delay=st.integers(0, 60_000))
def test_count_params_in_bounds_parse_to_the_model(to: int, delay: int) -> None:
    spec = load_catalog().get("demo.count")
    assert spec is not None
    parsed = spec.parse({"to": to, "delayMs": delay})
    assert msgspec.to_builtins(parsed) == {"to": to, "delayMs": delay}


@pytest.mark.parametrize(
    "raw",
    [
        {},
        {"to": 0},
        {"to": 100_001},
        {"to": 3, "delayMs": -1},
        {"to": 3, "delay_ms": 5},
        {"to": "3"},
        [3],
    ],
)
def test_params_outside_the_model_are_invalid_for_good(raw: Any) -> None:
    spec = load_catalog().get("demo.count")
    assert spec is not None
    with pytest.raises(InvalidParams) as caught:
        spec.parse(raw)
    assert caught.value.retriable is False


@pytest.mark.parametrize("name", ["count", "Demo.count", "demo.", ".count", "demo..count", "a-b.c"])
def test_a_task_name_must_be_dotted_lower_case_words(name: str) -> None:
    with pytest.raises(ValueError, match="dotted"):
        task(name, params=Shape)


def test_a_task_needs_a_description() -> None:
    async def undocumented(ctx: TaskContext[Shape]) -> None:
        pass

    with pytest.raises(ValueError, match="description"):
        task("acme.silent", params=Shape)(undocumented)
    spec = task("acme.silent", params=Shape, description="Quiet.")(undocumented)
    assert spec.description == "Quiet."


def test_two_tasks_of_one_name_are_refused() -> None:
    twin = task("acme.shapes.draw", params=Shape)(draw.function)
    with pytest.raises(ValueError, match="declared twice"):
        Catalog([draw, twin])
    # The same declaration met twice (a module re-exporting another's) is one task.
    assert Catalog([draw, draw]).names == ["acme.shapes.draw"]


def test_installed_packages_add_tasks_through_entry_points(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    extra = EntryPoint(name="acme", value=__name__, group=ENTRY_POINT_GROUP)
    monkeypatch.setattr(catalog_module, "entry_points", lambda group: [extra])
    loaded = load_catalog()
    assert set(loaded.names) == BUILT_INS | {"acme.shapes.draw"}
    assert loaded.get("acme.shapes.draw") is draw


def test_an_entry_point_must_name_a_module(monkeypatch: pytest.MonkeyPatch) -> None:
    wrong = EntryPoint(name="acme", value=f"{__name__}:draw", group=ENTRY_POINT_GROUP)
    monkeypatch.setattr(catalog_module, "entry_points", lambda group: [wrong])
    with pytest.raises(TypeError, match="must name a module"):
        load_catalog()


def test_a_module_offers_the_tasks_declared_at_its_top_level() -> None:
    assert specs_in(sys.modules[__name__]) == [draw]
