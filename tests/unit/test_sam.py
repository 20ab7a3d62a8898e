"""infra/sam as a user's CI would check it without an AWS account: the template passes cfn-lint (with
the SAM transform), the Lambda's requirements are uv.lock's versions, and the code its image carries
(infra/sam/Makefile's bundle: the mdslab wheel and those requirements, nothing else) imports the handler
in a Python that sees only that folder and answers a request through ``lambda_handler``. Building the
image itself needs Docker, which this machine does not have."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SAM = ROOT / "infra" / "sam"
CFN_LINT = str(Path(sys.executable).parent / "cfn-lint")


def _cfn_lint(template: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CFN_LINT, str(template)], capture_output=True, text=True, timeout=300, check=False)


def test_the_template_passes_cfn_lint() -> None:
    linted = _cfn_lint(SAM / "template.yaml")
    assert linted.returncode == 0, linted.stdout + linted.stderr


def test_cfn_lint_fails_a_broken_template(tmp_path: Path) -> None:
    broken = (SAM / "template.yaml").read_text().replace("MemorySize: 512", "MemorySize: 64000")
    assert broken != (SAM / "template.yaml").read_text()
    (tmp_path / "template.yaml").write_text(broken)
    linted = _cfn_lint(tmp_path / "template.yaml")
    assert linted.returncode != 0 and "E3034 64000 is greater than the maximum" in linted.stdout, linted.stdout


def test_the_lambdas_requirements_are_the_locked_versions() -> None:
    locked = {
        package["name"]: package["version"]
        for package in tomllib.loads((ROOT / "uv.lock").read_text())["package"]
        if "version" in package
    }
    pins = [
        line.split("==")
        for line in (SAM / "requirements.txt").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert pins and all(len(pin) == 2 for pin in pins), pins
    assert {name: version for name, version in pins if locked.get(name) != version} == {}


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("lambda-task")
    built = subprocess.run(
        ["make", "-s", "-C", str(SAM), "bundle", f"ARTIFACTS_DIR={target}"],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert built.returncode == 0, built.stdout + built.stderr
    return target


def test_the_bundle_holds_the_handler_and_not_the_labs_heavy_stack(bundle: Path) -> None:
    assert (bundle / "mdslab" / "api" / "lambda_ingest.py").exists()
    assert not {"pyspark", "ray", "mlflow", "deltalake", "langchain_core"} & {p.name for p in bundle.iterdir()}


def test_the_bundle_alone_imports_the_handler_and_answers(bundle: Path) -> None:
    """``python -I -S``: no site-packages, so an import the requirements miss fails here, not in Lambda."""
    code = textwrap.dedent(
        f"""
        import json, sys
        sys.path.insert(0, {str(bundle)!r})
        from mdslab.api.lambda_ingest import lambda_handler
        event = {{"httpMethod": "POST", "path": "/v1/transactions", "headers": {{}}, "body": "{{}}"}}
        print(json.dumps(lambda_handler(event, None)))
        print(sorted(name for name in sys.modules if name.split(".")[0] in ("pyspark", "ray", "psycopg", "minio")))
        """
    )
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(bundle),
        "MDSLAB_STATE_DIR": str(bundle / "state"),
        "MDSLAB_API__API_KEY": "a-key-of-sixteen-chars",
        "MDSLAB_KAFKA__BOOTSTRAP_SERVERS": "127.0.0.1:1",
    }
    ran = subprocess.run(
        [sys.executable, "-I", "-S", "-c", code], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    answer_line, heavy_line = ran.stdout.strip().splitlines()[-2:]
    answer = json.loads(answer_line)
    assert answer["statusCode"] == 401 and "X-API-Key" in json.loads(answer["body"])["detail"]
    assert heavy_line == "[]"
