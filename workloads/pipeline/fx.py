"""The lab's fixed FX table. Real platforms join a daily rates table; a fixed one keeps every run of
the pipeline reproducible, which the tests and the Spark-vs-DuckDB comparison rely on."""

from mdslab.workloads.contracts import Currency

FX_TO_USD: dict[str, float] = {Currency.USD: 1.0, Currency.EUR: 1.08, Currency.GBP: 1.27}
