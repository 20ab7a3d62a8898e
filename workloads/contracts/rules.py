"""Column rules derived from a contract, for engines that check whole columns (Spark, DuckDB).

Validating millions of rows one Pydantic object at a time is too slow for the batch pipeline, so it
checks columns with SQL predicates instead. Deriving those predicates from the model's own field
metadata (annotation, ``Field`` constraints) keeps a single source of truth: tighten a contract and
the pipeline's checks follow without a second, hand-written table.
"""

from __future__ import annotations

import types
from dataclasses import dataclass
from datetime import date, datetime
from enum import Enum
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import AwareDatetime, BaseModel
from pydantic.fields import FieldInfo

ColumnKind = Literal["string", "integer", "float", "boolean", "date", "timestamp"]
#: Numbers bound numeric columns; ``date``/``datetime`` bound date and timestamp columns.
Bound = float | date | datetime


@dataclass(frozen=True)
class FieldRule:
    """What a valid value of one column looks like.

    ``required`` means "present and not null" in a valid record; bounds are inclusive (``ge``/``le``)
    or exclusive (``gt``/``lt``); ``allowed`` lists the values of a closed vocabulary.
    """

    name: str
    kind: ColumnKind
    required: bool
    ge: Bound | None = None
    gt: Bound | None = None
    le: Bound | None = None
    lt: Bound | None = None
    allowed: tuple[str, ...] | None = None
    max_length: int | None = None
    min_length: int | None = None
    pattern: str | None = None
    description: str | None = None
    classification: str | None = None  # e.g. pii.email (see contracts.models.classified)


def field_rules(model: type[BaseModel]) -> list[FieldRule]:
    """One rule per field of ``model``, in field order.

    Raises ``TypeError`` naming the field when its annotation has no column equivalent, so a new kind of
    field is noticed when the contract changes, not when the pipeline silently skips it.
    """
    return [_rule(name, info, model) for name, info in model.model_fields.items()]


def _rule(name: str, info: FieldInfo, model: type[BaseModel]) -> FieldRule:
    annotation, nullable = _strip_optional(info.annotation)
    kind, allowed = _kind(annotation)
    if kind is None:
        raise TypeError(
            f"{model.__name__}.{name}: annotation {info.annotation!r} has no column kind; "
            "extend mdslab.workloads.contracts.rules._kind"
        )
    bounds = {key: _constraint(info, key) for key in ("ge", "gt", "le", "lt")}
    numeric = kind in ("integer", "float")
    return FieldRule(
        name=name,
        kind=kind,
        required=info.is_required() and not nullable,
        ge=_bound(bounds["ge"], numeric),
        gt=_bound(bounds["gt"], numeric),
        le=_bound(bounds["le"], numeric),
        lt=_bound(bounds["lt"], numeric),
        allowed=allowed,
        max_length=_constraint(info, "max_length"),
        min_length=_constraint(info, "min_length"),
        pattern=_constraint(info, "pattern"),
        description=info.description,
        classification=_classification(info),
    )


def _classification(info: FieldInfo) -> str | None:
    extra = info.json_schema_extra
    tag = extra.get("x-classification") if isinstance(extra, dict) else None
    return tag if isinstance(tag, str) else None


def _strip_optional(annotation: Any) -> tuple[Any, bool]:
    if get_origin(annotation) in (Union, types.UnionType):
        members = [arg for arg in get_args(annotation) if arg is not type(None)]
        if len(members) == 1:
            return members[0], len(members) < len(get_args(annotation))
    return annotation, False


def _kind(annotation: Any) -> tuple[ColumnKind | None, tuple[str, ...] | None]:
    if get_origin(annotation) is Literal:
        values = get_args(annotation)
        return (
            ("string", tuple(str(value) for value in values))
            if all(isinstance(value, str) for value in values)
            else (None, None)
        )
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return "string", tuple(str(member.value) for member in annotation)
    if annotation is AwareDatetime:
        return "timestamp", None
    simple: dict[type, ColumnKind] = {
        bool: "boolean",
        int: "integer",
        float: "float",
        str: "string",
        datetime: "timestamp",
        date: "date",
    }
    # bool before int and datetime before date: each is a subclass of the latter.
    for python_type, kind in simple.items():
        if isinstance(annotation, type) and issubclass(annotation, python_type):
            return kind, None
    return None, None


def _constraint(info: FieldInfo, key: str) -> Any:
    """The value of constraint ``key`` (``ge``, ``max_length``, ``pattern``...) in the field metadata.

    Pydantic stores ``Field(...)`` constraints as annotated-types objects (``Ge``, ``MaxLen``) or as its
    own general-metadata object, each exposing the constraint as an attribute of the same name.
    """
    for item in info.metadata:
        value = getattr(item, key, None)
        if value is not None:
            return value
    return None


def _bound(value: Any, numeric: bool) -> Bound | None:
    if value is None:
        return None
    return float(value) if numeric else value
