"""Online scoring: ``POST /v1/models/fraud/predict`` serves the registered champion.

The route keeps the loaded model and asks the registry which version holds the champion alias at
most every ``refresh_s`` seconds, so a promotion is picked up without a restart.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Request, status
from prometheus_client import CollectorRegistry, Counter, Histogram
from pydantic import BaseModel, ConfigDict, Field

from mdslab.settings import Settings
from mdslab.workloads.contracts.vocabulary import Channel, MerchantCategory

MAX_ROWS = 1000
log = logging.getLogger(__name__)


class FraudFeatures(BaseModel):
    """One transaction's point-in-time features, as in gold.fraud_features."""

    model_config = ConfigDict(extra="forbid")

    amount_usd: float = Field(gt=0, le=1_000_000, description="Amount in USD.")
    merchant_category: MerchantCategory
    channel: Channel
    local_hour: int = Field(ge=0, le=23, description="Hour of day at the customer's home.")
    distance_from_home_km: float | None = Field(default=None, ge=0, le=25_000)
    txn_count_1h: int = Field(ge=0)
    txn_count_24h: int = Field(ge=0)
    small_online_count_1h: int = Field(ge=0)
    distinct_merchants_24h: int = Field(ge=0)
    avg_amount_24h: float | None = Field(default=None, ge=0)
    avg_amount_30d: float | None = Field(default=None, ge=0)
    amount_to_avg_30d: float | None = Field(default=None, ge=0)
    seconds_since_prev: float | None = Field(default=None, ge=0)
    km_from_prev_located: float | None = Field(default=None, ge=0, le=25_000)
    is_new_merchant: bool


class Prediction(BaseModel):
    model: str = Field(description="Registered model name.")
    version: int = Field(description="The champion version that scored the rows.")
    scores: list[float] = Field(description="Fraud probability per row, in request order.")


class ModelMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.latency = Histogram(
            "mdslab_model_predict_duration_seconds",
            "Time the champion takes to score one request's rows (model only, without HTTP), by model.",
            ["model"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
            registry=registry,
        )
        self.rows = Counter("mdslab_model_scored_rows", "Rows scored online, by model.", ["model"], registry=registry)


class ChampionCache:
    """The champion model of one registered name, reloaded when the alias moves."""

    def __init__(self, settings: Settings, model: str, *, refresh_s: float = 5.0) -> None:
        from mdslab.tracking import registered_name

        self.settings = settings
        self.name = registered_name(settings, model)
        self.model = model
        self.refresh_s = refresh_s
        self._lock = threading.Lock()
        self._loaded: tuple[int, Any] | None = None
        self._checked = 0.0
        self._client: Any = None

    def get(self) -> tuple[int, Any]:
        """The champion's version and model. While the registry or the model store is down, the model
        already loaded keeps serving (a promotion is picked up once they answer again); without one, the
        outage is a ServiceUnavailableError, which the route turns into a 503."""
        from mdslab.errors import ServiceUnavailableError

        with self._lock:
            now = time.monotonic()
            if self._loaded is None or now - self._checked >= self.refresh_s:
                try:
                    self._refresh()
                except ServiceUnavailableError as exc:
                    if self._loaded is None:
                        raise
                    version, _model = self._loaded
                    log.warning("serving %s v%d: could not check for a new champion: %s", self.name, version, exc)
                self._checked = now
            assert self._loaded is not None
            return self._loaded

    def _refresh(self) -> None:
        import mlflow
        from botocore.exceptions import BotoCoreError, ClientError  # type: ignore[import-untyped]
        from mlflow.exceptions import MlflowException

        from mdslab.errors import ServiceUnavailableError
        from mdslab.ml.score import champion_or_fail
        from mdslab.tracking import configure

        if self._client is None:
            self._client = configure(self.settings)
        version = champion_or_fail(self._client, self.name, self.model)
        if self._loaded is not None and self._loaded[0] == version:
            return
        try:
            model = mlflow.sklearn.load_model(f"models:/{self.name}/{version}")
        except (BotoCoreError, ClientError, MlflowException, OSError) as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ServiceUnavailableError(
                f"could not load {self.name} v{version} from the model store (S3): {first}"
            ) from None
        self._loaded = (version, model)


def models_router() -> APIRouter:
    router = APIRouter(prefix="/v1/models", tags=["models"])

    @router.post(
        "/fraud/predict",
        response_model=Prediction,
        summary=f"Fraud probability of up to {MAX_ROWS} transactions from their features",
        responses={
            401: {"description": "No X-API-Key header."},
            403: {"description": "The X-API-Key header does not hold a valid key."},
            413: {"description": "Body over MDSLAB_API__MAX_QUERY_BODY_BYTES."},
            422: {"description": "Invalid features: each bad field with the reason."},
            503: {"description": "No champion model yet, or the registry is unreachable."},
        },
    )
    def predict_fraud(
        request: Request,
        rows: Annotated[list[FraudFeatures], Body(min_length=1, max_length=MAX_ROWS)],
    ) -> Prediction:
        import pandas as pd

        from mdslab.errors import MdslabError

        cache: ChampionCache = request.app.state.fraud_champion
        try:
            version, model = cache.get()
        except MdslabError as exc:
            raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc), headers={"Retry-After": "30"}) from None
        frame = pd.DataFrame([row.model_dump(mode="json") for row in rows])
        metrics: ModelMetrics = request.app.state.model_metrics
        started = time.perf_counter()
        scores = model.predict_proba(frame)[:, 1]
        metrics.latency.labels("fraud").observe(time.perf_counter() - started)
        metrics.rows.labels("fraud").inc(len(scores))
        return Prediction(model=cache.name, version=version, scores=[float(s) for s in scores])

    return router
