"""Settings: one typed object, env prefix MDSLAB_, secrets from the state dir, masked when printed."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from mdslab.cli.main import app
from mdslab.settings import InvalidSettingError, Profile, Settings, load_settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("MDSLAB_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setenv("MDSLAB_STATE_DIR", str(tmp_path / "state"))


def test_defaults_are_the_embedded_profile_on_loopback() -> None:
    settings = load_settings()
    assert settings.profile is Profile.EMBEDDED
    assert settings.s3.endpoint_url == "http://127.0.0.1:8333"
    assert settings.kafka.bootstrap_servers == "127.0.0.1:9092"
    assert (settings.postgres.host, settings.postgres.port) == ("127.0.0.1", 5432)
    assert settings.lake.raw_bucket == "raw-data-bucket"


def test_nested_settings_come_from_prefixed_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MDSLAB_PROFILE", "services")
    monkeypatch.setenv("MDSLAB_S3__ENDPOINT_URL", "https://minio.example:9000")
    monkeypatch.setenv("MDSLAB_COMPUTE__SPARK_EXECUTOR_CORES", "4")
    settings = load_settings()
    assert settings.profile is Profile.SERVICES
    assert settings.s3.host_port == ("minio.example", 9000)
    assert settings.s3.secure
    assert settings.compute.spark_executor_cores == 4


def test_invalid_value_is_refused_with_the_variable_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MDSLAB_KAFKA__DEFAULT_PARTITIONS", "0")
    monkeypatch.setenv("MDSLAB_API__PORT", "abc")
    with pytest.raises(InvalidSettingError) as raised:
        load_settings()
    message = str(raised.value)
    assert "MDSLAB_KAFKA__DEFAULT_PARTITIONS=0: Input should be greater than or equal to 1" in message
    assert "MDSLAB_API__PORT=abc" in message and "\n" not in message


def test_an_invalid_command_setting_is_one_line_not_a_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MDSLAB_KAFKA__DEFAULT_PARTITIONS", "0")
    for command in (["status"], ["tables"], ["pipeline", "run"]):
        result = CliRunner().invoke(app, command, env={"COLUMNS": "200"})
        assert result.exit_code == 1, (command, result.output)
        assert "Traceback" not in result.output and "MDSLAB_KAFKA__DEFAULT_PARTITIONS=0" in result.output, command


def test_an_unknown_step_is_one_line_naming_the_steps() -> None:
    result = CliRunner().invoke(app, ["pipeline", "run", "--step", "nosuch"], env={"COLUMNS": "200"})
    assert result.exit_code == 1, result.output
    assert "unknown step nosuch; steps: reference_customers, reference_merchants, reference_policies," in result.output
    assert "Traceback" not in result.output


def test_secrets_file_is_read_and_environment_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / "secrets.env").write_text("MDSLAB_S3__SECRET_KEY=from-file\nMDSLAB_POSTGRES__PASSWORD=pg-file\n")
    assert load_settings().s3.secret_key.get_secret_value() == "from-file"
    monkeypatch.setenv("MDSLAB_S3__SECRET_KEY", "from-env")
    settings = load_settings()
    assert settings.s3.secret_key.get_secret_value() == "from-env"
    assert settings.postgres.password.get_secret_value() == "pg-file"


def test_generated_secrets_are_private_and_stable(tmp_path: Path) -> None:
    from mdslab.services.secrets import ensure_secrets

    settings = load_settings()
    assert ensure_secrets(settings)
    secrets_file = settings.secrets_file
    assert secrets_file.stat().st_mode & 0o077 == 0
    first = load_settings()
    assert len(first.s3.secret_key.get_secret_value()) >= 24
    assert not ensure_secrets(first)
    assert load_settings().s3.secret_key == first.s3.secret_key


def test_masked_settings_never_show_a_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MDSLAB_POSTGRES__PASSWORD", "hunter2-very-secret")
    settings = load_settings()
    flat = dict(settings.env_items())
    assert flat["MDSLAB_POSTGRES__PASSWORD"] == "********"
    assert flat["MDSLAB_S3__SECRET_KEY"] == "(not set)"
    assert "hunter2" not in str(settings.masked())
    assert "hunter2-very-secret" in settings.postgres.dsn()


def test_dsn_quotes_special_characters() -> None:
    settings = load_settings(postgres={"password": "p@ss:w/rd", "user": "me"})
    assert settings.postgres.dsn("other") == "postgresql://me:p%40ss%3Aw%2Frd@127.0.0.1:5432/other"


def test_config_command_prints_variables_with_secrets_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MDSLAB_S3__SECRET_KEY", "do-not-print-me")
    result = CliRunner().invoke(app, ["config", "--json"])
    assert result.exit_code == 0, result.output
    assert "do-not-print-me" not in result.output
    assert '"secret_key": "********"' in result.output
    table = CliRunner().invoke(app, ["config"], env={"COLUMNS": "200"})
    assert "MDSLAB_S3__ENDPOINT_URL" in table.output


def test_environment_hands_every_setting_to_another_process(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from pydantic import SecretStr

    from mdslab.settings import ApiSettings, KafkaSettings

    original = Settings(
        state_dir=tmp_path,
        api=ApiSettings(api_key=SecretStr("k-123"), port=8123),
        kafka=KafkaSettings(topic_prefix="lab2.", default_partitions=6),
    )
    environment = original.environment()
    assert environment["MDSLAB_API__API_KEY"] == "k-123"  # secrets in clear: for subprocesses only
    assert "MDSLAB_COMPUTE__RAY_ADDRESS" not in environment  # unset stays unset
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    assert Settings() == original


def test_config_get_prints_one_value_unmasked_for_scripts(monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's `KEY=$(mdslab config --get MDSLAB_API__API_KEY)`: before, nothing said how to get $KEY."""
    monkeypatch.setenv("MDSLAB_API__API_KEY", "k-123")
    result = CliRunner().invoke(app, ["config", "--get", "mdslab_api__api_key"])
    assert result.exit_code == 0 and result.stdout == "k-123\n"
    masked = CliRunner().invoke(app, ["config"], env={"COLUMNS": "300"})
    assert "k-123" not in masked.output


def test_config_get_of_an_unknown_variable_names_close_ones() -> None:
    result = CliRunner().invoke(app, ["config", "--get", "MDSLAB_API__APIKEY"], env={"COLUMNS": "300"})
    assert result.exit_code == 1
    assert result.output.startswith("error: no setting MDSLAB_API__APIKEY; did you mean MDSLAB_API__API_KEY")


def test_the_bind_address_must_be_an_ip_address(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MDSLAB_COMPUTE__BIND_ADDRESS", "my-laptop")
    with pytest.raises(InvalidSettingError, match="MDSLAB_COMPUTE__BIND_ADDRESS=my-laptop"):
        load_settings()
    monkeypatch.setenv("MDSLAB_COMPUTE__BIND_ADDRESS", "10.0.0.5")
    assert load_settings().compute.bind_address == "10.0.0.5"


def test_lineage_over_http_without_a_url_is_one_line_naming_both_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MDSLAB_LINEAGE__TRANSPORT", "http")
    with pytest.raises(InvalidSettingError, match="MDSLAB_LINEAGE__TRANSPORT=http needs MDSLAB_LINEAGE__URL"):
        load_settings()
    monkeypatch.setenv("MDSLAB_LINEAGE__TRANSPORT", "kafka")
    with pytest.raises(InvalidSettingError, match="MDSLAB_LINEAGE__TRANSPORT=kafka"):
        load_settings()
