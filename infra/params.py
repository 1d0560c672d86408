"""Run parameters checked against a task's JSON Schema with the `jsonschema` library."""

import json
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

ROOT_NAME = "params"


def field_name(path: Sequence[str | int]) -> str:
    """A path into the parameters as people write it: `items[0].name`, or `params` for all."""
    name = ""
    for part in path:
        if isinstance(part, int):
            name += f"[{part}]"
        else:
            name += f".{part}" if name else part
    return name or ROOT_NAME


@lru_cache(maxsize=256)
def _compiled(canonical_schema: str) -> Draft202012Validator:
    # Keyed by the schema's canonical text, so equal schemas share one compiled validator
    # and a changed schema never meets a stale one. A broken schema is a task's bug: it
    # raises SchemaError here rather than passing everything.
    schema = json.loads(canonical_schema)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def _problem(error: ValidationError) -> tuple[list[str | int], str]:
    path: list[str | int] = list(error.absolute_path)
    return path, f"{field_name(path)}: {error.message} ({error.validator})"


class JsonSchemaParamsValidator:
    """Reports every violation of a Draft 2020-12 schema, each with its path and rule."""

    def errors(self, schema: Mapping[str, Any], params: Any) -> list[tuple[list[str | int], str]]:
        """Every violation as (path into the parameters, message); empty when valid."""
        validator = _compiled(json.dumps(schema, sort_keys=True))
        return [_problem(error) for error in validator.iter_errors(params)]
