"""The two paths bench/train.py times, from pinned bronze to a scored model: Spark on Ray (the
platform's pipeline steps, load_frame, LightGBM) and the pandas baseline, which runs in a child
process (``train.py --baseline-worker``) so its memory is its own.
"""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _feature_check import CHECKED_COLUMNS, compare_features
from _measure import TreeSampler
from _pandas_features import fraud_features, training_frame
from _train_lake import SizeRun, open_lake, size_settings
from _train_measure import measure, path_figures
from sklearn.metrics import average_precision_score, roc_auc_score

from mdslab.ml.features import FRAUD, TrainingFrame
from mdslab.ml.models import gradient_boosting
from mdslab.settings import load_settings

TRAIN_SCRIPT = Path(__file__).resolve().parent / "train.py"  # the baseline worker's entry point
FEATURE_STEPS = ("silver_transactions", "gold_fraud_features")
SILVER_COLUMNS = [
    "event_id",
    "customer_id",
    "merchant_id",
    "event_time",
    "amount_usd",
    "merchant_category",
    "channel",
    "local_hour",
    "distance_from_home_km",
    "lat",
    "lon",
]
LABEL_COLUMNS = ["event_id", "is_fraud", "fraud_pattern", "reported_at", "ingested_at"]


def fit_holdout(data: TrainingFrame, threads: int) -> dict[str, Any]:
    """``mdslab.ml.train.holdout_scores``'s fit (the time split, the LightGBM pipeline), and its scores."""
    spec = data.spec
    train_rows, valid_rows = data.split()
    model = gradient_boosting(spec, threads=threads).fit(train_rows[spec.features], train_rows[spec.label])
    scores = model.predict_proba(valid_rows[spec.features])[:, 1]
    return {
        "y": valid_rows[spec.label].to_numpy(),
        "scores": scores,
        "train_rows": len(train_rows),
        "validation_rows": len(valid_rows),
    }


def holdout_metrics(fit: dict[str, Any]) -> dict[str, Any]:
    y, scores = fit["y"], fit["scores"]
    return {
        "roc_auc": round(float(roc_auc_score(y, scores)), 5),
        "pr_auc": round(float(average_precision_score(y, scores)), 5),
        "train_rows": fit["train_rows"],
        "validation_rows": fit["validation_rows"],
        "validation_positives": int(y.sum()),
    }


def baseline_worker(job_path: Path) -> int:
    """The pandas baseline in its own process (run by the parent): its memory is its own."""
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    job = json.loads(job_path.read_text())
    settings = size_settings(load_settings(), job["rows"], job["seed"], create=False)
    lake = open_lake(settings)

    def say(text: str) -> None:
        print(text, flush=True)

    out: dict[str, Any] = {"engine": "pandas", "silver_version": job["silver_version"]}
    with TreeSampler() as sampler:
        say("pandas: reading silver.transactions and bronze.fraud_labels")
        with measure(sampler, "read") as read:
            tx = lake.read_table("silver.transactions", version=job["silver_version"], columns=SILVER_COLUMNS)
            tx = tx.to_pandas()
            labels = lake.read_table("bronze.fraud_labels", version=job["labels_version"], columns=LABEL_COLUMNS)
            labels = labels.to_pandas()
        say("pandas: computing the point-in-time features")
        with measure(sampler, "features") as compute:
            features = fraud_features(tx, labels)
            data = training_frame(features, job["silver_version"])
        del tx, labels
        say("pandas: training LightGBM")
        with measure(sampler, "training") as training:
            fit = fit_holdout(data, job["threads"])
    phases = {"read": read, "features": compute, "training": training}
    out.update(path_figures(phases, feature_build=("read", "features"), frame_load=(), training=("training",)))
    out["metrics"] = holdout_metrics(fit)
    out["rows_in"] = len(features)
    del data, fit
    gc.collect()
    if job.get("gold_version") is not None:
        say("pandas: checking the features against gold.fraud_features")
        gold = lake.read_table(
            "gold.fraud_features", version=job["gold_version"], columns=["event_id", *CHECKED_COLUMNS]
        )
        out["feature_check"] = compare_features(features, gold.to_pandas())
        out["feature_check"]["gold_version"] = job["gold_version"]
    Path(job["out"]).write_text(json.dumps(out, default=str))
    return 0


def run_platform(
    size: SizeRun, spark: Any, sampler: TreeSampler, threads: int, say: Callable[[str], None], again: str = ""
) -> None:
    """silver_transactions + gold_fraud_features on Spark, the frame through Spark, then the model."""
    from _duck_steps import pinned

    from mdslab.ml.features import load_frame
    from mdslab.workloads.pipeline.step_runtime import PipelineContext, run_step
    from mdslab.workloads.pipeline.steps import STEPS

    lake = open_lake(size.settings)
    ctx = PipelineContext(size.settings, lake, spark)
    steps = {step.name: step for step in STEPS}
    step_figures: list[dict[str, Any]] = []
    with measure(sampler, f"spark features {size.rows}") as build:
        for name in FEATURE_STEPS:
            say(f"{size.label}: Spark on Ray {name}{again}")
            result = run_step(ctx, pinned(steps[name], size.bronze), force=True)
            step_figures.append(
                {
                    "step": name,
                    "seconds": round(result.seconds, 3),
                    **{f"{key}_s": round(value, 3) for key, value in result.phases.items()},
                    "inputs": result.inputs,
                    "outputs": result.outputs,
                    "rows_out": result.rows_out,
                }
            )
    size.silver_version = step_figures[0]["outputs"]["silver.transactions"]
    size.gold_version = step_figures[1]["outputs"]["gold.fraud_features"]
    say(f"{size.label}: Spark on Ray: gold.fraud_features -> pandas (load_frame){again}")
    with measure(sampler, f"spark frame {size.rows}") as load:
        data = load_frame(lake, spark, FRAUD, version=size.gold_version)
    say(f"{size.label}: Spark on Ray: training LightGBM{again}")
    with measure(sampler, f"spark training {size.rows}") as training:
        fit = fit_holdout(data, threads)
    phases = {"feature_build": build, "frame_load": load, "training": training}
    size.platform_runs.append(
        {
            "engine": "spark",
            **path_figures(
                phases, feature_build=("feature_build",), frame_load=("frame_load",), training=("training",)
            ),
            "steps": step_figures,
            "metrics": holdout_metrics(fit),
            "frame_rows": len(data.frame),
            "silver_version": size.silver_version,
            "gold_version": size.gold_version,
        }
    )


def run_baseline(size: SizeRun, threads: int, say: Callable[[str], None], *, check: bool) -> None:
    """The pandas baseline in a child process (see ``baseline_worker``); ``check``: compare with gold."""
    lake = open_lake(size.settings)
    if size.gold_version is None:  # no platform run now: the gold an earlier run built, and its inputs
        size.gold_version = lake.version("gold.fraud_features")
        if size.gold_version is None:
            raise RuntimeError(f"no gold.fraud_features in {size.settings.lake.curated_bucket}: run the platform path")
        inputs = lake.commit_metadata("gold.fraud_features", version=size.gold_version)["inputs"]
        size.silver_version = int(inputs["silver.transactions"])
        if int(inputs["bronze.fraud_labels"]) != size.bronze["bronze.fraud_labels"]:
            raise RuntimeError("gold.fraud_features was built from other fraud labels than the pinned ones")
    with tempfile.TemporaryDirectory(prefix="bench-train-") as scratch:
        job, out, log = (Path(scratch) / name for name in ("job.json", "out.json", "stderr.log"))
        job.write_text(
            json.dumps(
                {
                    "rows": size.rows,
                    "seed": size.seed,
                    "silver_version": size.silver_version,
                    "labels_version": size.bronze["bronze.fraud_labels"],
                    "gold_version": size.gold_version if check else None,
                    "threads": threads,
                    "out": str(out),
                }
            )
        )
        with log.open("w") as errors:
            child = subprocess.Popen(
                [sys.executable, str(TRAIN_SCRIPT), "--baseline-worker", str(job)],
                stdout=subprocess.PIPE,
                stderr=errors,
                text=True,
            )
            assert child.stdout is not None
            for line in child.stdout:
                say(f"{size.label}: {line.strip()}")
            code = child.wait()
        if code != 0:
            tail = "\n".join(log.read_text().splitlines()[-30:])
            raise RuntimeError(f"the pandas baseline failed (exit {code}):\n{tail}")
        size.baseline_runs.append(json.loads(out.read_text()))
