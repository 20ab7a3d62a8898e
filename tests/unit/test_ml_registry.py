"""A registry that cannot answer is not a registry without a champion: nothing is promoted on it
(a stand-in client: the outage is the point, and the real registry's answers are in test_ml.py)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INTERNAL_ERROR, INVALID_PARAMETER_VALUE, RESOURCE_DOES_NOT_EXIST

from mdslab.ml.model_registry import RegistryUnavailableError, champion_version, promote_if_better


class Registry:
    def __init__(self, error: MlflowException) -> None:
        self.error, self.aliases_set = error, []

    def get_model_version_by_alias(self, name: str, alias: str) -> Any:
        raise self.error

    def set_registered_model_alias(self, name: str, alias: str, version: str) -> None:
        self.aliases_set.append((name, alias, version))

    def set_model_version_tag(self, *args: Any) -> None:
        pass


def test_no_alias_means_no_champion_and_the_first_model_is_promoted() -> None:
    no_model = Registry(MlflowException("Registered Model with name=fraud not found", RESOURCE_DOES_NOT_EXIST))
    assert champion_version(no_model, "fraud") is None  # type: ignore[arg-type]
    registry = Registry(MlflowException("Registered model alias champion not found.", INVALID_PARAMETER_VALUE))
    decision = promote_if_better(
        registry,  # type: ignore[arg-type]
        "fraud", 1, 0.5, pd.DataFrame({"x": [1.0]}), pd.Series([1]), lambda y, p: float(np.mean(p)),
    )  # fmt: skip
    assert decision.promoted and registry.aliases_set == [("fraud", "champion", "1")]


def test_a_registry_outage_promotes_nothing_and_says_so() -> None:
    registry = Registry(MlflowException("could not connect to server: Connection refused", INTERNAL_ERROR))
    expected = r"did not say whether fraud has a champion.*nothing was promoted"
    with pytest.raises(RegistryUnavailableError, match=expected):
        promote_if_better(
            registry,  # type: ignore[arg-type]
            "fraud", 2, 0.9, pd.DataFrame({"x": [1.0]}), pd.Series([1]), lambda y, p: float(np.mean(p)),
        )  # fmt: skip
    assert registry.aliases_set == []
