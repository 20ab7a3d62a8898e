# ruff: noqa: E501  (real Airflow output lines, kept whole)
"""`mdslab airflow test` shows the lines a person acts on; the rest stays in its log file. The lines
below are from a real run (trimmed), plus a failed task's record as Airflow 3 prints it."""

from __future__ import annotations

from mdslab.orchestration.airflow_output import ConsoleFilter

OUTPUT = """\
2026-12-06T16:26:27.971191Z [warning  ] GitWildMatchPattern ('gitwildmatch') is deprecated. [py.warnings] category=DeprecationWarning
2026-12-06T16:26:38.526078Z [info     ] services healthy: s3, kafka, postgres; topics already there [mdslab.orchestration] loc=tasks.py:36
2026-12-06T16:26:38.600000Z [info     ] Task instance state updated    [airflow.api_fastapi.execution_api.routes.task_instances] rows_affected=1
2026-12-06T16:26:46.397781Z [warning  ] 43 messages failed their contract: see bronze.dead_letters [mdslab.workloads.ingestion.consumer] loc=consumer.py:343
2026-12-06T16:27:41.128400Z [info     ] Exception while sending command. [root] loc=java_gateway.py:1052
Traceback (most recent call last):
ConnectionResetError: [Errno 104] Connection reset by peer
java.util.concurrent.RejectedExecutionException: Task rejected
	at java.base/java.util.concurrent.ThreadPoolExecutor.reject(ThreadPoolExecutor.java:833)
2026-12-06T16:28:22.164338Z [info     ] Skipping task.                 [task] loc=task_runner.py:1622 reason='no champion version of mdslab-fraud yet'
2026-12-06T16:28:40.000000Z [error    ] Task failed with exception     [task] loc=task_runner.py:1000
Traceback (most recent call last):
mdslab.workloads.quality.QualityGateError: quality gate: silver.quarantine_transactions 43 of 3,000 (limit 0%)
2026-12-06T16:28:41.000000Z [info     ] ::endgroup::                   [task] loc=task_runner.py:2232
"""


def _shown(text: str) -> list[str]:
    keep = ConsoleFilter()
    return [line for line in text.splitlines() if keep.shows(line)]


def test_the_labs_lines_warnings_skips_and_errors_with_their_traceback_are_shown() -> None:
    assert _shown(OUTPUT) == [
        "2026-12-06T16:26:38.526078Z [info     ] services healthy: s3, kafka, postgres; topics already there "
        "[mdslab.orchestration] loc=tasks.py:36",
        "2026-12-06T16:26:46.397781Z [warning  ] 43 messages failed their contract: see bronze.dead_letters "
        "[mdslab.workloads.ingestion.consumer] loc=consumer.py:343",
        "2026-12-06T16:28:22.164338Z [info     ] Skipping task.                 [task] loc=task_runner.py:1622 "
        "reason='no champion version of mdslab-fraud yet'",
        "2026-12-06T16:28:40.000000Z [error    ] Task failed with exception     [task] loc=task_runner.py:1000",
        "Traceback (most recent call last):",
        "mdslab.workloads.quality.QualityGateError: quality gate: silver.quarantine_transactions 43 of 3,000 "
        "(limit 0%)",
    ]


def test_airflows_own_records_library_retries_and_jvm_noise_stay_in_the_log() -> None:
    shown = "\n".join(_shown(OUTPUT))
    for noise in (
        "Task instance state updated",
        "GitWildMatchPattern",
        "ConnectionResetError",
        "java.util",
        "endgroup",
    ):
        assert noise not in shown
