"""The pipeline's steps in run order; each SQL step runs its plan on Spark through RayDP."""

from __future__ import annotations

from collections.abc import Callable

from mdslab.errors import MdslabError
from mdslab.workloads.pipeline.dialect import SPARK, Dialect
from mdslab.workloads.pipeline.engines import run_spark
from mdslab.workloads.pipeline.gold_sql import (
    FRAUD_INPUT_COLUMNS,
    FRAUD_LOOK_BACK_US,
    FRAUD_WINDOW_COLUMNS,
    claims_features_plan,
    claims_monthly_plan,
    daily_spend_plan,
    fraud_features_plan,
)
from mdslab.workloads.pipeline.incremental import (
    claims_in_silver,
    claims_judged_by_terms,
    fraud_features_increment,
    gold_increment,
    new_values,
    policy_terms_guard,
    silver_increment,
)
from mdslab.workloads.pipeline.plan import SqlPlan
from mdslab.workloads.pipeline.reference_step import REFERENCE_STEPS
from mdslab.workloads.pipeline.silver_sql import silver_claims_plan, silver_transactions_plan
from mdslab.workloads.pipeline.step_runtime import Incremental, PipelineContext, Step, StepOutput, Versions

PlanFactory = Callable[[Dialect], SqlPlan]


def spark_step(
    name: str, layer: str, factory: PlanFactory, description: str, incremental: Incremental | None = None
) -> Step:
    """A full build on Spark through RayDP; increments (``incremental``) on DuckDB (see its module)."""
    plan = factory(SPARK)

    def build(ctx: PipelineContext, versions: Versions) -> StepOutput:
        from mdslab.compute.exchange import release_spark_input

        inputs = {view: ctx.spark_table(table, int(versions[table])) for view, table in plan.inputs.items()}
        outputs = run_spark(ctx.spark.get(), plan, inputs)
        first = next(iter(plan.inputs.values()))

        def cleanup() -> None:
            for df in inputs.values():
                release_spark_input(df)

        return StepOutput(outputs, ctx.lake.row_count(first, version=int(versions[first])), cleanup)

    return Step(name, layer, tuple(plan.inputs.values()), tuple(plan.outputs), build, description, None, incremental)


PLANS: dict[str, PlanFactory] = {
    "silver_transactions": silver_transactions_plan,
    "silver_claims": silver_claims_plan,
    "gold_daily_spend": daily_spend_plan,
    "gold_fraud_features": fraud_features_plan,
    "gold_claims_monthly": claims_monthly_plan,
    "gold_claims_features": claims_features_plan,
}

STEPS: tuple[Step, ...] = (
    *REFERENCE_STEPS,
    spark_step(
        "silver_transactions",
        "silver",
        silver_transactions_plan,
        "Parse, type, deduplicate and conform transactions; quarantine the rest.",
        silver_increment(silver_transactions_plan, "bronze.transactions"),
    ),
    spark_step(
        "silver_claims",
        "silver",
        silver_claims_plan,
        "Parse, type, deduplicate and conform claims against policies; quarantine the rest.",
        silver_increment(
            silver_claims_plan,
            "bronze.claims",
            policy_terms_guard(claims_judged_by_terms("silver.claims", "silver.quarantine_claims")),
        ),
    ),
    spark_step(
        "gold_daily_spend",
        "gold",
        daily_spend_plan,
        "Daily spend per customer and merchant.",
        gold_increment(
            daily_spend_plan,
            scoped="silver_transactions",
            scope=new_values("silver.transactions", "event_month", "event_date", "customer_id"),
            changes=("silver.transactions",),
        ),
    ),
    spark_step(
        "gold_fraud_features",
        "gold",
        fraud_features_plan,
        "Point-in-time fraud features per transaction, with labels.",
        fraud_features_increment(fraud_features_plan, FRAUD_INPUT_COLUMNS, FRAUD_WINDOW_COLUMNS, FRAUD_LOOK_BACK_US),
    ),
    spark_step(
        "gold_claims_monthly",
        "gold",
        claims_monthly_plan,
        "Claims by month, region, product and type.",
        gold_increment(
            claims_monthly_plan,
            scoped="silver_claims",
            scope=new_values("silver.claims", "incident_month"),
            changes=("silver.claims",),
        ),
    ),
    spark_step(
        "gold_claims_features",
        "gold",
        claims_features_plan,
        "Point-in-time claim features at first notice of loss, with the large-loss label.",
        gold_increment(
            claims_features_plan,
            scoped="silver_claims",
            scope=new_values("silver.claims", "customer_id"),
            changes=("silver.claims", "bronze.policies"),
            guard=policy_terms_guard(claims_in_silver("silver.claims")),
        ),
    ),
)


class UnknownStepError(MdslabError, ValueError):
    """A step or layer name that the pipeline does not have."""


def _family(step: Step) -> str:
    """What a step's name starts with: reference, silver or gold (``reference_policies``: reference)."""
    return step.name.partition("_")[0]


def select_steps(names: list[str] | None) -> list[Step]:
    """Steps by name, by layer (bronze, silver, gold) or by family (``reference``: every reference
    snapshot), in run order; all when ``names`` is empty."""
    if not names:
        return list(STEPS)
    known = {step.name for step in STEPS} | {step.layer for step in STEPS} | {_family(step) for step in STEPS}
    unknown = [name for name in names if name not in known]
    if unknown:
        raise UnknownStepError(
            f"unknown step {', '.join(unknown)}; steps: {', '.join(s.name for s in STEPS)} "
            "(or a layer: bronze, silver, gold; or reference)"
        )
    return [step for step in STEPS if {step.name, step.layer, _family(step)} & set(names)]
