"""The README's settings table and the committed schema file match the code."""

import re
from pathlib import Path

from api.schema import build_schema
from infra.settings import Settings, settings_table

ROOT = Path(__file__).resolve().parents[2]


def test_readme_lists_every_setting_as_the_code_describes_it() -> None:
    readme = (ROOT / "README.md").read_text()
    match = re.search(r"<!-- settings:start -->\n(.*?)\n<!-- settings:end -->", readme, re.S)
    assert match, "README.md lacks the settings markers"
    assert match.group(1).strip() == settings_table(), (
        "README settings table is stale: paste `taskyard config --describe` between the markers"
    )


def test_committed_schema_matches_the_code() -> None:
    committed = (ROOT / "schema.graphql").read_text()
    assert committed == build_schema(Settings()).as_str() + "\n", (
        "schema.graphql is stale: run `taskyard export-schema -o schema.graphql`"
    )
