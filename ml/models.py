"""The two estimators trained side by side: LightGBM and a logistic-regression baseline.

Both are scikit-learn pipelines over the raw feature columns (strings for categories), so the logged
model takes exactly what the feature table holds and the serving route needs no separate encoder.
"""

from __future__ import annotations

from importlib import metadata
from typing import Any

from lightgbm import LGBMClassifier
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

from mdslab.ml.features import ModelSpec

# Types inside the LightGBM pipeline that MLflow's safe (skops) format must be told it may load.
TRUSTED_TYPES = ["collections.OrderedDict", "lightgbm.basic.Booster", "lightgbm.sklearn.LGBMClassifier", "numpy.dtype"]

LGBM_PARAMS: dict[str, Any] = {
    "n_estimators": 400,
    "learning_rate": 0.05,
    "num_leaves": 31,
    "min_child_samples": 40,
    "subsample": 0.8,
    "subsample_freq": 1,
    "colsample_bytree": 0.8,
    "reg_lambda": 1.0,
}


def gradient_boosting(spec: ModelSpec, *, threads: int = 2, seed: int = 7) -> Pipeline:
    """LightGBM; categories become ordinal codes (unknown values -> -1), missing numbers stay NaN."""
    encode = ColumnTransformer(
        [
            ("numeric", "passthrough", list(spec.numeric)),
            (
                "categorical",
                OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1, encoded_missing_value=-1),
                list(spec.categorical),
            ),
        ],
        verbose_feature_names_out=False,
    )
    model = LGBMClassifier(**LGBM_PARAMS, n_jobs=threads, random_state=seed, verbose=-1)
    return Pipeline([("encode", encode), ("model", model)])


def baseline(spec: ModelSpec) -> Pipeline:
    """Logistic regression on scaled, median-imputed numbers and one-hot categories."""
    encode = ColumnTransformer(
        [
            (
                "numeric",
                Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]),
                list(spec.numeric),
            ),
            ("categorical", OneHotEncoder(handle_unknown="ignore"), list(spec.categorical)),
        ]
    )
    return Pipeline([("encode", encode), ("model", LogisticRegression(max_iter=2000, C=1.0))])


# What loading a logged model needs (the skops format, the LightGBM pipeline, the frames it scores).
SERVING_DISTRIBUTIONS = ("mlflow", "scikit-learn", "lightgbm", "skops", "numpy", "pandas", "scipy")


def pip_requirements() -> list[str]:
    """Exact versions from this environment (uv.lock pins them) for the model's requirements.txt.

    Without them MLflow infers the list on every log_model: it tried `uv export` (uv is not on PATH in
    the lab's venv), warned, then scanned the model's imports: ~8 s per model and four warnings."""
    return [f"{name}=={metadata.version(name)}" for name in SERVING_DISTRIBUTIONS]
