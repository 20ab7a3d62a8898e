"""A contract's rules (:func:`field_rules`) as SQL over raw JSON text: typed values and problems.

Every field yields at most one problem, the first of: missing, bad type or format, not allowed, out
of range. A problem is text ``'code|message'``; codes are stable (tests and dashboards use them),
messages name the field and the offending value.
"""

from __future__ import annotations

from datetime import date, datetime

from mdslab.workloads.contracts import FieldRule
from mdslab.workloads.pipeline.dialect import Dialect

NUMBER_RE = r"-?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][-+]?[0-9]+)?"
INTEGER_RE = r"-?[0-9]+"
DATE_RE = r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
TIMESTAMP_RE = (
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}([.][0-9]{1,9})?)?(Z|[-+][0-9]{2}(:?[0-9]{2})?)"
)

RAW = "_raw_"
PROBLEM_CODES = (
    "malformed_json",
    "unexpected_field",
    "missing_field",
    "bad_type",
    "bad_format",
    "not_allowed",
    "out_of_range",
    "inconsistent",
    "duplicate",
    "unknown_reference",
)

_KIND_TEXT = {
    "float": "number",
    "integer": "integer",
    "boolean": "boolean",
    "date": "date (YYYY-MM-DD)",
    "timestamp": "timestamp with a time zone (ISO 8601)",
}


def raw_column(rule: FieldRule) -> str:
    return f"{RAW}{rule.name}"


def _anchored(pattern: str) -> str:
    """Full-match form of a pydantic pattern (Java regex and RE2 share the syntax contracts use)."""
    return f"^{pattern.removeprefix('^').removesuffix('$')}$"


def typed_expression(rule: FieldRule, d: Dialect) -> str:
    """The field's typed value: NULL when the raw text is missing or not of the field's kind."""
    raw = raw_column(rule)
    if rule.kind == "float":
        return f"CASE WHEN {d.regex(raw, f'^{NUMBER_RE}$')} THEN {d.try_cast(raw, 'DOUBLE')} END"
    if rule.kind == "integer":
        return f"CASE WHEN {d.regex(raw, f'^{INTEGER_RE}$')} THEN {d.try_cast(raw, 'BIGINT')} END"
    if rule.kind == "boolean":
        return f"CASE WHEN {raw} = 'true' THEN TRUE WHEN {raw} = 'false' THEN FALSE END"
    if rule.kind == "date":
        return f"CASE WHEN {d.regex(raw, f'^{DATE_RE}$')} THEN {d.try_cast(raw, 'DATE')} END"
    if rule.kind == "timestamp":
        return f"CASE WHEN {d.regex(raw, f'^{TIMESTAMP_RE}$')} THEN {d.try_cast(raw, d.timestamp_type)} END"
    return raw


def _literal(value: float | date | datetime, d: Dialect) -> str:
    if isinstance(value, datetime):
        return d.timestamp_literal(value)
    if isinstance(value, date):
        return d.date_literal(value)
    return repr(float(value))


def _shown(value: float | date | datetime) -> str:
    return value.isoformat() if isinstance(value, date) else f"{value:g}"


def _message(
    code: str, field: str, text: str, d: Dialect, *, with_value: str | None = None, quoted: bool = True
) -> str:
    """SQL for 'code|field: text', optionally starting with the offending value (shortened)."""
    if with_value is None:
        return d.string_literal(f"{code}|{field}: {text}")
    quote = "'" if quoted else ""
    head, tail = d.string_literal(f"{code}|{field}: {quote}"), d.string_literal(f"{quote}{text}")
    return f"concat({head}, substr({with_value}, 1, 40), {tail})"


def problem_expression(rule: FieldRule, d: Dialect) -> str:
    """'code|message' for the field's first problem, or NULL when the value is valid."""
    raw, typed = raw_column(rule), rule.name
    branches: list[tuple[str, str]] = []
    if rule.required:
        branches.append((f"{raw} IS NULL", _message("missing_field", rule.name, "required field is missing", d)))
    if rule.kind in _KIND_TEXT:
        branches.append(
            (
                f"{raw} IS NOT NULL AND {typed} IS NULL",
                _message("bad_type", rule.name, f" is not a valid {_KIND_TEXT[rule.kind]}", d, with_value=raw),
            )
        )
    if rule.allowed:
        values = ", ".join(d.string_literal(value) for value in rule.allowed)
        branches.append(
            (
                f"{typed} NOT IN ({values})",
                _message("not_allowed", rule.name, f" is not one of {', '.join(rule.allowed)}", d, with_value=raw),
            )
        )
    elif rule.pattern and rule.kind == "string":
        branches.append(
            (
                f"NOT {d.regex(typed, _anchored(rule.pattern))}",
                _message("bad_format", rule.name, f" does not match {rule.pattern}", d, with_value=raw),
            )
        )
    if rule.kind == "string" and (rule.max_length is not None or rule.min_length is not None):
        limits = f"{rule.min_length or 0} to {rule.max_length if rule.max_length is not None else 'any'}"
        checks = []
        if rule.max_length is not None:
            checks.append(f"length({typed}) > {rule.max_length}")
        if rule.min_length is not None:
            checks.append(f"length({typed}) < {rule.min_length}")
        branches.append(
            (
                " OR ".join(checks),
                _message("out_of_range", rule.name, f"length must be {limits} characters", d),
            )
        )
    bounds = [
        (op, value)
        for op, value in (("<", rule.ge), ("<=", rule.gt), (">", rule.le), (">=", rule.lt))
        if value is not None
    ]
    if bounds:
        shown = ", ".join(
            f"{sign} {_shown(value)}"
            for sign, value in ((">=", rule.ge), (">", rule.gt), ("<=", rule.le), ("<", rule.lt))
            if value is not None
        )
        outside = " OR ".join(f"{typed} {op} {_literal(value, d)}" for op, value in bounds)
        branches.append(
            (
                outside,
                _message("out_of_range", rule.name, f" is out of range ({shown})", d, with_value=raw, quoted=False),
            )
        )
    if not branches:
        return f"CAST(NULL AS {d.string_type})"
    # Later branches only see values that passed the earlier ones, so each test can assume a typed value.
    cases = " ".join(f"WHEN {condition} THEN {message}" for condition, message in branches)
    return f"CASE {cases} END"
