"""JSON request bodies read as Microsoft's server reads them: property names case-insensitive.

Unknown properties are refused rather than ignored, so a typo (or a credential a client hopes
we will use) is a clear 400 instead of a silently different export.
"""

from __future__ import annotations

from typing import Any

from dicomsvc.errors import BadRequest


class FieldInvalid(BadRequest):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"The field '{field}' in request body is invalid: {reason}")


def object_fields(value: Any, *, field: str, names: dict[str, str]) -> dict[str, Any]:
    """A JSON object's properties keyed by canonical name.

    `names` maps every accepted lower-case spelling to its canonical name (so `sources`
    can stand for `source`).
    """
    if not isinstance(value, dict):
        raise FieldInvalid(field, "expected a JSON object.")
    fields: dict[str, Any] = {}
    for key, item in value.items():
        where = f"{field}.{key}" if field else key
        canonical = names.get(str(key).lower())
        if canonical is None:
            raise FieldInvalid(where, "unknown property.")
        if canonical in fields:
            raise FieldInvalid(where, f"property '{canonical}' is given more than once.")
        fields[canonical] = item
    return fields


def optional_string(fields: dict[str, Any], name: str, *, field: str) -> str | None:
    """A string property; absent, null or blank is None."""
    value = fields.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str):
        raise FieldInvalid(field, "expected a string.")
    if any(ord(char) < 32 for char in value):
        raise FieldInvalid(field, "control characters are not allowed.")
    return value


def required_string(fields: dict[str, Any], name: str, *, field: str) -> str:
    value = optional_string(fields, name, field=field)
    if value is None:
        raise FieldInvalid(field, "a value is required.")
    return value
