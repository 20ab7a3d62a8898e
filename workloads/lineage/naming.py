"""Dataset names as the OpenLineage naming spec writes them, so that any consumer (Marquez, OpenMetadata,
DataHub) joins the lab's datasets with the same datasets seen by other producers (a Spark job with the
openlineage-spark listener names a Delta table on S3 exactly so)."""

from __future__ import annotations

from urllib.parse import urlsplit

from mdslab.lakehouse import Lakehouse, TableSpec
from mdslab.settings import ApiSettings, KafkaSettings, LakeSettings, PostgresSettings

Dataset = tuple[str, str]  # (namespace, name)


def lake_table(lake: Lakehouse, table: str) -> Dataset:
    """A Delta table: ``s3://<bucket>`` and the key prefix of the table."""
    return delta_table(lake.spec(table), lake.lake)


def delta_table(spec: TableSpec, lake: LakeSettings) -> Dataset:
    return f"s3://{spec.bucket(lake)}", spec.path.strip("/")


def postgres_table(pg: PostgresSettings, schema: str, table: str) -> Dataset:
    return f"postgres://{pg.host}:{pg.port}", f"{pg.database}.{schema}.{table}"


def api_route(api: ApiSettings, events: str) -> Dataset:
    """An ingestion route (no OpenLineage convention exists for HTTP endpoints): the API's configured
    address and the path events of one kind are POSTed to, e.g. ``/v1/transactions``."""
    return f"http://{api.host}:{api.port}", f"/v1/{events}"


def kafka_topic(kafka: KafkaSettings, topic: str) -> Dataset:
    host, port = kafka.first_host_port
    return f"kafka://{host}:{port}", topic


MODEL_OUTPUT = "prediction"  # a model as a dataset has one field: what it predicts


def mlflow_model(tracking_uri: str, name: str) -> Dataset:
    """A registered model: ``mlflow://<tracking store host[:port]/path>`` (never its credentials) and
    ``models/<name>``; the model version is the dataset's version, its one field :data:`MODEL_OUTPUT`."""
    parts = urlsplit(tracking_uri)
    where = f"{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}{parts.path}" or tracking_uri
    return f"mlflow://{where}", f"models/{name}"
