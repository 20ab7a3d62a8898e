"""The online model keeps serving through a registry or model-store outage once it is loaded."""

from __future__ import annotations

from typing import Any

import pytest

from mdslab.errors import ServiceUnavailableError
from mdslab.ml.serving import ChampionCache
from mdslab.settings import Settings


class FlakyRegistry(ChampionCache):
    """A stand-in registry: version 1 on the first check, then an outage, then version 2."""

    def __init__(self) -> None:
        super().__init__(Settings(), "fraud", refresh_s=0)
        self.answers: list[Any] = [1, ServiceUnavailableError("registry down"), 2]

    def _refresh(self) -> None:
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        self._loaded = (answer, f"model v{answer}")


def test_a_loaded_champion_keeps_serving_while_the_registry_is_down(caplog: pytest.LogCaptureFixture) -> None:
    cache = FlakyRegistry()
    assert cache.get() == (1, "model v1")
    assert cache.get() == (1, "model v1")  # outage: the loaded model answers
    assert "could not check for a new champion: registry down" in caplog.text
    assert cache.get() == (2, "model v2")  # back: the promotion is picked up


def test_without_a_loaded_champion_the_outage_is_raised() -> None:
    cache = FlakyRegistry()
    cache.answers = [ServiceUnavailableError("registry down")]
    with pytest.raises(ServiceUnavailableError, match="registry down"):
        cache.get()
