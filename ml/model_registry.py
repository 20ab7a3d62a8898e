"""The model registry's one rule: the alias ``champion`` moves only to a model that beats the current
champion on the same validation rows (by PR AUC, the metric that matters at a 1% base rate)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.models.model import ModelInfo
from mlflow.protos.databricks_pb2 import (
    INVALID_PARAMETER_VALUE,
    RESOURCE_ALREADY_EXISTS,
    RESOURCE_DOES_NOT_EXIST,
    ErrorCode,
)

from mdslab.errors import ServiceUnavailableError

CHAMPION = "champion"
# How the registry says "none": no such model (RESOURCE_DOES_NOT_EXIST), or a model without the alias
# (INVALID_PARAMETER_VALUE "Registered model alias champion not found", MLflow 3's SQL store).
NOT_FOUND = frozenset(ErrorCode.Name(code) for code in (RESOURCE_DOES_NOT_EXIST, INVALID_PARAMETER_VALUE))
PRIMARY_METRIC = "pr_auc"


@dataclass(frozen=True)
class Promotion:
    promoted: bool
    new_version: int
    new_score: float
    champion_version: int | None  # before the decision
    champion_score: float | None  # the champion re-scored on the same validation rows

    @property
    def message(self) -> str:
        new = f"version {self.new_version} ({PRIMARY_METRIC} {self.new_score:.4f})"
        if self.champion_version is None:
            return f"{new} is the first model: it is now the champion"
        old = f"champion version {self.champion_version} ({PRIMARY_METRIC} {self.champion_score:.4f})"
        verdict = "beats" if self.promoted else "does not beat"
        after = "it is now the champion" if self.promoted else f"version {self.champion_version} stays champion"
        return f"{new} {verdict} {old} on the same validation rows: {after}"


class RegistryUnavailableError(ServiceUnavailableError):
    """The registry could not say whether a champion exists; nothing may be promoted on that."""


def register(client: MlflowClient, name: str, model: ModelInfo) -> int:
    """A new version of ``name`` for a logged model; its number.

    What ``log_model(registered_model_name=...)`` does, through the client: the fluent path prints
    "Successfully registered model" / "Created version" straight to stderr, whatever the log level."""
    try:
        client.create_registered_model(name)
    except MlflowException as exc:
        if exc.error_code != ErrorCode.Name(RESOURCE_ALREADY_EXISTS):
            raise
    created = client.create_model_version(name, source=model.model_uri, run_id=model.run_id, model_id=model.model_id)
    return int(created.version)


def champion_version(client: MlflowClient, name: str) -> int | None:
    """The champion's version; None only when the registry says there is none (no model, no alias).
    Any other failure is not "no champion": promoting on it would skip the comparison."""
    try:
        return int(client.get_model_version_by_alias(name, CHAMPION).version)
    except MlflowException as exc:
        if exc.error_code in NOT_FOUND:
            return None
        raise RegistryUnavailableError(
            f"the model registry did not say whether {name} has a {CHAMPION} ({exc.error_code}: "
            f"{str(exc.message).splitlines()[0]}); nothing was promoted: check MLflow's database (`mdslab status`)"
        ) from None


def promote_if_better(
    client: MlflowClient,
    name: str,
    new_version: int,
    new_score: float,
    validation: pd.DataFrame,
    y: pd.Series,
    score: Callable[[np.ndarray, np.ndarray], float],
) -> Promotion:
    """Compare with the champion on ``validation`` and move the alias when the new model is better."""
    current = champion_version(client, name)
    champion_score = None
    if current is not None:
        champion = mlflow.sklearn.load_model(f"models:/{name}@{CHAMPION}")
        champion_score = float(score(y.to_numpy(), champion.predict_proba(validation)[:, 1]))
    promoted = current is None or new_score > (champion_score or 0.0)
    if promoted:
        client.set_registered_model_alias(name, CHAMPION, str(new_version))
    decision = Promotion(promoted, new_version, new_score, current, champion_score)
    client.set_model_version_tag(name, str(new_version), "promotion", decision.message)
    return decision
