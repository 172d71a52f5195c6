"""JSON request bodies: DRF's parser, and the one rule every JSON body shares.

No value of this API holds a NUL character (U+0000): DICOM text never does (NUL only pads a
UID inside a file), nor do paths, names or tag keywords. PostgreSQL refuses it too, in text
and in jsonb, so a body holding one is refused whole with a 400 naming it, before any rule of
its own runs; otherwise the database would answer 500 where SQLite stored it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rest_framework import parsers

from dicomsvc.errors import BadRequest

NUL_IN_BODY = "The request body holds a NUL character (\\u0000), which no value may contain."


def json_nul_refuse(data: Any) -> None:
    """BadRequest when any string of a parsed JSON body, key or value, holds a NUL."""
    pending = [data]
    while pending:  # a stack, not recursion: JSON nests as deep as its parser allowed
        item = pending.pop()
        if isinstance(item, str):
            if "\x00" in item:
                raise BadRequest(NUL_IN_BODY)
        elif isinstance(item, Mapping):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, refusing a body that holds a NUL character (`json_nul_refuse`)."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Mapping[str, Any] | None = None) -> Any:
        data = super().parse(stream, media_type, parser_context)
        json_nul_refuse(data)
        return data
