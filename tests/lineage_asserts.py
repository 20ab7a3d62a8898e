"""What every OpenLineage run event the lab stores must satisfy.

The spec's JSON Schema files are not published on PyPI or npm, but openlineage-python's
``openlineage.client.generated`` classes are generated from them: each required property is a field
without a default, each property's type is the field's annotation, the enums are Enum classes, the
formats (date-time, uuid, uri) are validators, and every facet class knows its schema URL. So each stored
event is rebuilt from its JSON through those classes, strictly: a missing required property, a value of
the wrong type, an unknown eventType, a malformed time or run id, a facet under the wrong parent (a dataset
facet among run facets) or a property the spec does not define on a core object fails the check, naming
the path. Facets with a schema URL the client does not know are custom facets: they must still carry
``_producer`` and ``_schemaURL`` (the spec's BaseFacet) and may add their own properties.
"""

from __future__ import annotations

import enum
import importlib
import pkgutil
import types
import typing
from functools import cache
from typing import Any

import attr
from openlineage.client import generated
from openlineage.client.generated.base import BaseEvent, BaseFacet, RunEvent

SCHEMA_URL = RunEvent._get_schema()


@cache
def _facet_classes() -> dict[str, type[BaseFacet]]:
    """Every facet the client's spec version defines, by its schema URL."""
    found: dict[str, type[BaseFacet]] = {}
    for module_info in pkgutil.iter_modules(generated.__path__):
        module = importlib.import_module(f"{generated.__name__}.{module_info.name}")
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, BaseFacet) and attr.has(value):
                found[value._get_schema()] = value
    return found


def _build(hint: Any, value: Any, where: str) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None:
            assert type(None) in args, f"{where}: null where the spec wants {hint}"
            return None
        (option,) = [arg for arg in args if arg is not type(None)]
        return _build(option, value, where)
    if origin is list:
        assert isinstance(value, list), f"{where}: {value!r} is not an array"
        return [_build(args[0], item, f"{where}[{i}]") for i, item in enumerate(value)]
    if origin is dict:
        assert isinstance(value, dict), f"{where}: {value!r} is not an object"
        return {key: _build(args[1], item, f"{where}.{key}") for key, item in value.items()}
    if hint is Any:
        return value
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        assert value in {member.value for member in hint}, f"{where}: {value!r} is not one of {hint.__name__}"
        return hint(value)
    if isinstance(hint, type) and attr.has(hint):
        assert isinstance(value, dict), f"{where}: {value!r} is not an object"
        return _instance(hint, value, where)
    if hint is bool:
        matches = isinstance(value, bool)
    else:  # str, int or float; JSON numbers may be integers where a float is wanted, never booleans
        matches = isinstance(value, (int, float) if hint is float else hint) and not isinstance(value, bool)
    assert matches, f"{where}: {value!r} is not of type {hint.__name__}"
    return value


def _instance(cls: type, data: dict[str, Any], where: str) -> Any:
    is_facet = issubclass(cls, BaseFacet)
    if is_facet:
        assert isinstance(data.get("_producer"), str) and data["_producer"], f"{where}: no _producer"
        assert isinstance(data.get("_schemaURL"), str), f"{where}: no _schemaURL"
        known = _facet_classes().get(data["_schemaURL"])
        if known is not None:
            assert issubclass(known, cls), f"{where}: a {known.__name__} where a {cls.__name__} belongs"
            cls = known
    hints = typing.get_type_hints(cls)
    fields = attr.fields(cls)
    kwargs: dict[str, Any] = {}
    for field in fields:
        if field.name not in data:
            assert field.default is not attr.NOTHING, f"{where}: the required property {field.name} is missing"
        elif field.init:
            kwargs[field.alias] = _build(hints[field.name], data[field.name], f"{where}.{field.name}")
    if not is_facet:
        unknown = set(data) - {field.name for field in fields}
        assert not unknown, f"{where}: properties the spec does not define: {sorted(unknown)}"
    built = cls(**kwargs)  # runs the spec's format validators (date-time, uuid, uri)
    if isinstance(built, BaseEvent):
        assert data.get("schemaURL") == built.schemaURL, f"{where}: schemaURL {data.get('schemaURL')!r}"
    return built


def assert_conforms_to_client_spec(event: dict[str, Any]) -> RunEvent:
    """``event`` rebuilt as the client's RunEvent; an AssertionError names the first property that is not
    what the spec says."""
    built = _instance(RunEvent, event, "event")
    assert isinstance(built, RunEvent)
    return built


def assert_well_formed_runs(
    events: list[dict[str, Any]], *, unstarted: frozenset[str] = frozenset()
) -> dict[str, list[str]]:
    """Every event conforms to the spec, every run started and ended; returns run id -> its event types.
    Runs of the ``unstarted`` jobs must end but may lack their START (another producer's known gap).
    Parents outside ``events`` are the caller's to check (an orchestrator's run may be reported elsewhere)."""
    assert events
    runs: dict[str, list[str]] = {}
    jobs: dict[str, tuple[str, str]] = {}  # run id -> (job, producer)
    for event in events:
        assert_conforms_to_client_spec(event)
        runs.setdefault(event["run"]["runId"], []).append(event["eventType"])
        jobs[event["run"]["runId"]] = (event["job"]["name"], event["producer"])
    for run_id, states in runs.items():
        job, producer = jobs[run_id]
        started = states[0] == "START" or job in unstarted
        assert started and states[-1] in {"COMPLETE", "FAIL"}, f"run {run_id} of {job} ({producer}): {states}"
    return runs


def parents(events: list[dict[str, Any]]) -> set[str]:
    return {e["run"]["facets"]["parent"]["run"]["runId"] for e in events if "parent" in e["run"]["facets"]}
