"""infra/terraform as a user's CI would check it without an AWS account or a terraform binary.

Every ``.tf`` file parses as HCL2 (python-hcl2); the modules and environments fit together the way
``terraform validate`` would insist on (sources exist, arguments are declared variables, required variables are
passed, ``var.x`` and ``module.m.output`` references resolve, every environment calls every module, the AWS
provider is pinned); the outputs named after settings are settings. checkov, from its own pinned environment
(``make checkov-env``), scans the whole tree offline and finds no failed check: a check may only be waived
inline, ``#checkov:skip=CKV_...:<reason>``, with a reason. A control run plants a bucket without its
encryption and must see checkov fail it, so a scanner that checks nothing cannot pass.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import hcl2
import pytest

from tests.unit.test_documented_settings import SETTINGS

ROOT = Path(__file__).resolve().parents[2]
TERRAFORM = ROOT / "infra" / "terraform"
MODULES = TERRAFORM / "modules"
ENVIRONMENTS = ["dev", "staging", "prod"]
# Modules that other modules are built from (one bucket definition for the lake and MWAA's DAGs), not layers
# an environment calls itself.
BUILDING_BLOCKS = {"s3-bucket"}
MODULE_FILES = {"versions.tf", "variables.tf", "main.tf", "outputs.tf"}
META_ARGUMENTS = {"source", "version", "count", "for_each", "providers", "depends_on"}
CHECKOV = ROOT / ".tools" / "checkov" / "bin" / "checkov"
# No network: no update check against PyPI, no policy metadata from Prisma Cloud.
CHECKOV_ENV = {"CKV_SKIP_PACKAGE_UPDATE_CHECK": "true", "BC_SKIP_MAPPING": "TRUE"}
SKIP = re.compile(r"#\s*checkov:skip=([A-Z0-9_]*)(?::(.*))?")


def _tf_dirs() -> list[Path]:
    return sorted({path.parent for path in TERRAFORM.rglob("*.tf")})


def _unquote(value: Any) -> Any:
    return value[1:-1] if isinstance(value, str) and len(value) > 1 and value[0] == value[-1] == '"' else value


@functools.cache
def _load(directory: Path) -> dict[str, list[Any]]:
    """The blocks of every .tf file of one directory, merged by block type (as Terraform reads a module)."""
    merged: dict[str, list[Any]] = {}
    for path in sorted(directory.glob("*.tf")):
        with path.open() as handle:
            parsed = hcl2.load(handle)
        for kind, blocks in parsed.items():
            if not kind.startswith("__"):
                merged.setdefault(kind, []).extend(blocks)
    return merged


def _named(blocks: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {_unquote(name): body for block in blocks for name, body in block.items() if not name.startswith("__")}


def _module_calls(directory: Path) -> dict[str, dict[str, Any]]:
    return _named(_load(directory).get("module", []))


def _variables(module: Path) -> dict[str, dict[str, Any]]:
    return _named(_load(module).get("variable", []))


def _outputs(directory: Path) -> dict[str, dict[str, Any]]:
    return _named(_load(directory).get("output", []))


def _source(directory: Path, call: dict[str, Any]) -> Path:
    return (directory / _unquote(call["source"])).resolve()


def _text(directory: Path) -> str:
    return "\n".join(path.read_text() for path in sorted(directory.glob("*.tf")))


def _checkov(directory: Path) -> subprocess.Popen[str]:
    assert CHECKOV.exists(), f"{CHECKOV} is missing: `make checkov-env` builds it from tools/checkov/requirements.txt"
    command = [str(CHECKOV), "-d", str(directory), "--framework", "terraform", "--output", "json", "--quiet"]
    return subprocess.Popen(
        [*command, "--skip-download"],
        env={**os.environ, **CHECKOV_ENV},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _report(process: subprocess.Popen[str]) -> tuple[int, dict[str, Any]]:
    stdout, stderr = process.communicate(timeout=300)
    try:
        report = json.loads(stdout)
    except json.JSONDecodeError:
        pytest.fail(f"checkov printed no JSON report (exit {process.returncode}): {stdout[-2000:]}{stderr[-2000:]}")
    assert isinstance(report, dict) and report.get("check_type") == "terraform", stdout[:2000]
    return process.returncode, report


@pytest.fixture(scope="module")
def scans(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[int, dict[str, Any]]]:
    """checkov on the tree, and on a copy of the bucket module with and without its encryption (both at once)."""
    control = tmp_path_factory.mktemp("checkov-control")
    shutil.copytree(MODULES / "s3-bucket", control / "intact")
    shutil.copytree(MODULES / "s3-bucket", control / "planted")
    main = control / "planted" / "main.tf"
    sse = re.compile(r'resource "aws_s3_bucket_server_side_encryption_configuration" "this" \{.*?\n\}\n', re.S)
    planted, removed = sse.subn("", main.read_text())
    assert removed == 1, "the bucket module's encryption block moved: update the planted failure"
    main.write_text(planted)
    tree, copy = _checkov(TERRAFORM), _checkov(control)
    return {"tree": _report(tree), "control": _report(copy)}


def test_every_tf_file_parses() -> None:
    files = sorted(TERRAFORM.rglob("*.tf"))
    assert len(files) >= 4 * (len(ENVIRONMENTS) + 8), [str(f.relative_to(TERRAFORM)) for f in files]
    for path in files:
        with path.open() as handle:
            assert hcl2.load(handle), path


def test_each_module_has_its_files_and_says_why() -> None:
    modules = sorted(MODULES.iterdir())
    assert {m.name for m in modules} >= {"network", "lake-storage", "streaming", "database", "compute", "api"}
    for module in modules:
        assert {p.name for p in module.glob("*.tf")} == MODULE_FILES, module
        header = (module / "main.tf").read_text().splitlines()[:3]
        assert all(line.startswith("#") for line in header), f"{module}/main.tf opens without a comment header"


def test_the_aws_provider_is_pinned_everywhere() -> None:
    for directory in _tf_dirs():
        terraform = _load(directory).get("terraform", [])
        providers = [p for block in terraform for p in block.get("required_providers", [])]
        aws = [p["aws"] for p in providers if "aws" in p]
        assert len(aws) == 1, f"{directory}: required_providers.aws missing"
        assert _unquote(aws[0]["source"]) == "hashicorp/aws", directory
        assert re.fullmatch(r"(~> ?|= ?)?\d+\.\d+(\.\d+)?", _unquote(aws[0]["version"])), (directory, aws[0])


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_each_environment_calls_every_module(environment: str) -> None:
    directory = TERRAFORM / "environments" / environment
    called = {_source(directory, call).name for call in _module_calls(directory).values()}
    assert called == {m.name for m in MODULES.iterdir()} - BUILDING_BLOCKS


def test_building_blocks_are_used_by_modules() -> None:
    used = {_source(m, call).name for m in MODULES.iterdir() for call in _module_calls(m).values()}
    assert used >= BUILDING_BLOCKS


def _callers() -> list[Path]:
    return [TERRAFORM / "environments" / env for env in ENVIRONMENTS] + sorted(MODULES.iterdir())


@pytest.mark.parametrize("caller", _callers(), ids=lambda p: str(p.relative_to(TERRAFORM)))
def test_module_calls_match_the_modules_variables(caller: Path) -> None:
    for name, call in _module_calls(caller).items():
        source = _source(caller, call)
        assert source.is_dir() and source.is_relative_to(MODULES), f"{caller}: module {name}'s source {source}"
        declared = _variables(source)
        passed = {key for key in call if not key.startswith("__")} - META_ARGUMENTS
        assert passed - set(declared) == set(), f"{caller}: module {name} passes undeclared variables"
        required = {v for v, body in declared.items() if "default" not in body}
        assert required - passed == set(), f"{caller}: module {name} misses required variables"


@pytest.mark.parametrize("caller", _callers(), ids=lambda p: str(p.relative_to(TERRAFORM)))
def test_references_resolve(caller: Path) -> None:
    text = _text(caller)
    declared = set(_variables(caller))
    assert set(re.findall(r"\bvar\.([A-Za-z_][\w-]*)", text)) - declared == set(), caller
    calls = _module_calls(caller)
    for name, output in set(re.findall(r"\bmodule\.([\w-]+)\.([\w-]+)", text)):
        assert name in calls, f"{caller}: module.{name} is not called"
        assert output in _outputs(_source(caller, calls[name])), f"{caller}: module.{name} has no output {output}"


def test_the_checks_see_a_broken_reference(tmp_path: Path) -> None:
    broken = tmp_path / "environments" / "dev"
    shutil.copytree(TERRAFORM / "environments" / "dev", broken)
    shutil.copytree(MODULES, tmp_path / "modules")
    main = broken / "main.tf"
    main.write_text(main.read_text().replace("module.keys.key_arn", "module.keys.key_id", 1))
    with pytest.raises(AssertionError, match="has no output key_id"):
        test_references_resolve(broken)


def test_outputs_named_for_settings_are_settings_and_agree_across_environments() -> None:
    named = [{o for o in _outputs(TERRAFORM / "environments" / env) if o.startswith("MDSLAB_")} for env in ENVIRONMENTS]
    assert named[0] and all(n == named[0] for n in named), named
    assert named[0] - SETTINGS == set()
    mentioned = set(re.findall(r"MDSLAB_[A-Z0-9_]*[A-Z0-9]", "".join(_text(d) for d in _tf_dirs())))
    assert mentioned - SETTINGS == set()
    readme = (TERRAFORM / "README.md").read_text()
    assert {o for o in named[0] if f"| `{o}` |" not in readme} == set(), "infra/terraform/README.md's output table"


def test_every_waiver_has_a_reason() -> None:
    waivers = [
        (path, match)
        for path in sorted(TERRAFORM.rglob("*.tf"))
        for line in path.read_text().splitlines()
        if (match := SKIP.search(line))
    ]
    assert waivers, "no waiver found: the pattern or the files changed"
    for path, match in waivers:
        check, reason = match.group(1), (match.group(2) or "").strip()
        assert re.fullmatch(r"CKV2?_[A-Z]+_\d+", check), f"{path}: {match.group(0)}"
        assert len(reason.split()) >= 4, f"{path}: {check} is waived without a reason"
    prod = TERRAFORM / "environments" / "prod"
    assert not [w for w in waivers if w[0].parent == prod], "prod waives nothing at its module calls"


def test_checkov_finds_no_failed_check(scans: dict[str, tuple[int, dict[str, Any]]]) -> None:
    returncode, report = scans["tree"]
    failed = [(f["check_id"], f["resource"], f["file_path"]) for f in report["results"]["failed_checks"]]
    assert failed == [] and returncode == 0, failed
    summary = report["summary"]
    assert summary["parsing_errors"] == 0 and summary["resource_count"] >= 90 and summary["passed"] >= 300, summary


def test_checkov_fails_a_bucket_without_encryption(scans: dict[str, tuple[int, dict[str, Any]]]) -> None:
    returncode, report = scans["control"]
    failed = {(f["check_id"], f["file_path"]) for f in report["results"]["failed_checks"]}
    assert returncode == 1 and failed == {("CKV_AWS_145", "/planted/main.tf")}, failed
