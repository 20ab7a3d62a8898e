"""The API's /docs (Swagger UI) and /redoc render every route in a real browser with no internet: their
JavaScript and CSS come from a locked package (fastapi-offline) served by the API itself, not a CDN."""

from __future__ import annotations

import re
import urllib.request
from pathlib import Path

import pytest

from mdslab.api.app import create_app
from mdslab.api.server import background_server
from mdslab.settings import Settings
from tests.browser import rendered_dom, screenshot

pytestmark = pytest.mark.integration


def test_docs_and_redoc_render_every_route_without_internet(services: Settings, tmp_path: Path) -> None:
    app = create_app(services)
    routes = set(app.openapi()["paths"])
    assert "/v1/sql" in routes
    with background_server(app) as url:
        for page in ("docs", "redoc"):
            with urllib.request.urlopen(f"{url}/{page}", timeout=10) as response:
                html = response.read().decode()
            assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html)
            assert assets and not [a for a in assets if a.startswith(("http:", "https:", "//"))], assets
            text = re.sub(r"<[^>]+>|\u200b|&ZeroWidthSpace;", "", rendered_dom(f"{url}/{page}"))  # tags, path breaks
            assert not [route for route in routes if route not in text], page  # every route on the rendered page
            screenshot(f"{url}/{page}", tmp_path / f"{page}.png")
