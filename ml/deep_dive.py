"""``mdslab run ml``: the ML deep dive end to end, on whatever the lake holds (or a fresh simulation).

Gold features (built by the batch pipeline if needed) -> training frame through Spark on Ray ->
LightGBM + baseline in MLflow -> registry and champion rule -> batch scores in gold -> one online
prediction through the same code the API route uses.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mdslab.ml.features import FRAUD, load_frame
from mdslab.ml.score import ScoreResult, score
from mdslab.ml.serving import ChampionCache
from mdslab.ml.train import TrainResult, train
from mdslab.settings import Settings
from mdslab.tracking import configure, tracking_uri
from mdslab.workloads.file_drop_feed import drop_batch
from mdslab.workloads.lake import lakehouse
from mdslab.workloads.pipeline.runner import run_pipeline
from mdslab.workloads.pipeline.step_runtime import SparkProvider
from mdslab.workloads.simulation_runs import next_run
from mdslab.workloads.simulator import simulate


@dataclass(frozen=True)
class DeepDiveReport:
    trained: TrainResult
    scored: ScoreResult
    example_score: float
    tracking_uri: str
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "train": self.trained.as_dict(),
            "score": {
                "table": self.scored.table,
                "version": self.scored.version,
                "rows": self.scored.rows,
                "model_version": self.scored.model_version,
                "skipped": self.scored.skipped,
            },
            "online_example_score": self.example_score,
            "seconds": round(self.seconds, 2),
        }


def run_ml(
    settings: Settings,
    *,
    rows: int = 100_000,
    seed: int = 42,
    spark: SparkProvider | None = None,
    on_progress: Callable[[str], None] = lambda _msg: None,
) -> DeepDiveReport:
    """Everything the deep dive shows; simulates and builds gold first when the lake has none."""
    started = time.perf_counter()
    lake = lakehouse(settings)
    provider = spark or SparkProvider(settings)
    try:
        if not lake.exists(FRAUD.table):
            on_progress(f"no {FRAUD.table} yet: simulating {rows:,} transactions and landing them")
            planned = next_run(settings.postgres, transactions=rows, seed=seed, reuse_same=True)
            drop_batch(settings, lake, simulate(planned.config))
        on_progress("bringing gold up to date (pipeline steps whose inputs changed)")
        run_pipeline(
            settings,
            spark=provider,
            steps=["reference", "silver_transactions", "gold_fraud_features"],
            on_step=lambda name, index, total: on_progress(f"pipeline step {index + 1}/{total}: {name}"),
        )
        on_progress("reading the training frame through Spark on Ray")
        data = load_frame(lake, provider, FRAUD)
        client = configure(settings)
        on_progress(f"training LightGBM and the baseline on {len(data.frame):,} labelled transactions")
        trained = train(settings, client, data)
        on_progress("scoring every transaction with the champion")
        scored = score(settings, lake, client)
        _, model = ChampionCache(settings, "fraud").get()
        example = data.frame[FRAUD.features].tail(1)
        example_score = float(model.predict_proba(example)[:, 1][0])
    finally:
        if spark is None:
            provider.close()
    return DeepDiveReport(trained, scored, example_score, tracking_uri(settings), time.perf_counter() - started)
