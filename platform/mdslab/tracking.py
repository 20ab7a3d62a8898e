"""MLflow on the platform: runs, metrics and the model registry in PostgreSQL, artifacts on S3.

MLflow reads its S3 endpoint and credentials from the process environment (boto3), so this is the
one place that sets them, from the settings; everything else receives a configured client.
"""

from __future__ import annotations

import os

import mlflow
from mlflow import MlflowClient

from mdslab import database, objectstore
from mdslab.settings import Settings


def tracking_uri(settings: Settings, *, with_password: bool = True) -> str:
    """The tracking/registry store: an explicit URI, or the `mlflow` database on our PostgreSQL
    (``with_password=False``: for a command line; the process then needs ``PGPASSWORD``)."""
    if settings.ml.tracking_uri:
        return settings.ml.tracking_uri
    return settings.postgres.dsn(
        settings.ml.tracking_database, driver="postgresql+psycopg", with_password=with_password
    )


def artifact_root(settings: Settings) -> str:
    return f"s3://{settings.ml.artifact_bucket}"


def artifact_environment(settings: Settings) -> dict[str, str]:
    """What boto3 (inside MLflow, the UI server too) needs to reach the artifact store."""
    return {
        "MLFLOW_S3_ENDPOINT_URL": settings.s3.endpoint_url,
        "AWS_ACCESS_KEY_ID": settings.s3.access_key,
        "AWS_SECRET_ACCESS_KEY": settings.s3.secret_key.get_secret_value(),
        "AWS_DEFAULT_REGION": settings.s3.region,
    }


def configure(settings: Settings) -> MlflowClient:
    """Point this process's MLflow at the platform (creating the database and bucket if needed)."""
    if not settings.ml.tracking_uri:
        database.ensure_database(settings.postgres, settings.ml.tracking_database)
    objectstore.ensure_buckets(objectstore.s3_client(settings.s3), [settings.ml.artifact_bucket])
    os.environ.update(artifact_environment(settings))
    uri = tracking_uri(settings)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def experiment_id(client: MlflowClient, settings: Settings, name: str) -> str:
    """The experiment ``name``, created with its artifacts under the bucket if new."""
    found = client.get_experiment_by_name(name)
    if found is not None:
        return str(found.experiment_id)
    return str(client.create_experiment(name, artifact_location=f"{artifact_root(settings)}/{name}"))


def registered_name(settings: Settings, model: str) -> str:
    return f"{settings.ml.registry_prefix}{model}"
