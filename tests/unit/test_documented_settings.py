"""Every `MDSLAB_*` variable the README and the docs tell a person to set is a setting the lab reads.

Settings ignore unknown variables (pydantic-settings' ``extra="ignore"``: the environment holds much else),
so a renamed setting left in a page would silently do nothing for whoever followed it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import BaseModel

from mdslab.settings import ENV_PREFIX, Settings

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", ROOT / "bench" / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
PAGES += sorted((ROOT / "compose").rglob("*.md")) + sorted((ROOT / "infra").rglob("*.md"))
NAME = re.compile(rf"{ENV_PREFIX}[A-Z0-9_]*")
ON_PURPOSE = {"MDSLAB_API__APIKEY"}  # docs/reliability.md shows the error a typo gets


def _variables(model: type[BaseModel], prefix: str) -> set[str]:
    names: set[str] = set()
    for name, field in model.model_fields.items():
        nested = field.annotation
        if isinstance(nested, type) and issubclass(nested, BaseModel):
            names |= _variables(nested, f"{prefix}{name.upper()}__")
        else:
            names.add(f"{prefix}{name.upper()}")
    return names


SETTINGS = _variables(Settings, ENV_PREFIX)


def _unknown(text: str) -> set[str]:
    """Names in ``text`` that are neither a setting nor a prefix of some (``MDSLAB_CONSOLE__*``, ``MDSLAB_*``)."""
    found = set(NAME.findall(text)) - ON_PURPOSE
    return {
        name
        for name in found
        if name not in SETTINGS and not (name.endswith("_") and any(s.startswith(name) for s in SETTINGS))
    }


def test_the_check_sees_a_wrong_name_and_accepts_prefixes() -> None:
    assert "MDSLAB_S3__ENDPOINT_URL" in SETTINGS and "MDSLAB_COMPUTE__RAY_ADDRESS" in SETTINGS
    assert _unknown("set MDSLAB_S3__ENDPOINT or MDSLAB_KAFKA__BOOTSTRAP_SERVER") == {
        "MDSLAB_S3__ENDPOINT", "MDSLAB_KAFKA__BOOTSTRAP_SERVER",
    }  # fmt: skip
    assert _unknown("the MDSLAB_CONSOLE__* settings, any MDSLAB_* variable, MDSLAB_API__PORT") == set()
    assert _unknown("MDSLAB_NOPE__*") == {"MDSLAB_NOPE__"}


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_every_documented_variable_is_a_setting(page: Path) -> None:
    assert _unknown(page.read_text()) == set()
