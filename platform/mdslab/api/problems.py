"""The body of a 422 for invalid events, shared by the API's handler and the Lambda adapter so that a
client sees the same answer from both: each problem's location, message and type, and a first line a
person can act on."""

from __future__ import annotations

from typing import Any


def clean_errors(errors: Any) -> list[dict[str, Any]]:
    """Validation errors without Pydantic's ``ctx``/``input`` (exception objects, echoed payloads)."""
    return [
        {"loc": list(error.get("loc", [])), "msg": str(error.get("msg", "")), "type": str(error.get("type", ""))}
        for error in errors
    ]


def invalid_events_body(errors: Any) -> dict[str, Any]:
    """``{"message": ..., "detail": [...]}``: the first problem in one line, then every problem."""
    detail = clean_errors(errors)
    first = detail[0] if detail else {"loc": ["body"], "msg": "invalid"}
    where = ".".join(str(part) for part in first["loc"])
    more = f" (and {len(detail) - 1} more problems)" if len(detail) > 1 else ""
    return {"message": f"{where}: {first['msg']}{more}; nothing was accepted", "detail": detail}
