"""docs/operations.md's configuration reference lists exactly the fields of the API's Settings class."""

from __future__ import annotations

import re

from docs_support import DOCS

from docchain.api.settings import Settings


def test_configuration_table_is_the_settings_class() -> None:
    text = (DOCS / "operations.md").read_text()
    table = text.split("<!-- settings-table -->", 1)[1].split("\n\n", 1)[0]
    documented = re.findall(r"^\| `(DOCCHAIN_[A-Z0-9_]+)` \|", table, re.M)
    prefix = Settings.model_config["env_prefix"]
    expected = [f"{prefix}{name}".upper() for name in Settings.model_fields]
    assert sorted(documented) == sorted(expected)
    assert len(documented) == len(set(documented))
