"""Export destinations: `filesystem` and `s3`, chosen by the request's `destination.type`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dicomsvc.errors import BadRequest
from operations.export.destinations.base import (
    Destination,
    DestinationUnavailable,
    Sink,
    SourceStream,
    SourceUnreadable,
)
from operations.export.destinations.filesystem import (
    FilesystemDestination,
    error_log_tail,
    filesystem_destination_parse,
)
from operations.export.destinations.s3 import S3Destination, s3_destination_parse
from operations.export.fields import FieldInvalid, object_fields, required_string

__all__ = [
    "Destination",
    "DestinationUnavailable",
    "Sink",
    "SourceStream",
    "SourceUnreadable",
    "destination_from_parameters",
    "destination_parse",
    "error_log_tail",
]

_PARSERS: dict[str, Callable[[Any], Destination]] = {
    "filesystem": filesystem_destination_parse,
    "s3": s3_destination_parse,
}


def destination_parse(value: Any) -> Destination:
    fields = object_fields(value, field="destination", names={"type": "type", "settings": "settings"})
    destination_type = required_string(fields, "type", field="destination.type")
    parser = _PARSERS.get(destination_type.lower())
    if parser is None:
        raise BadRequest(f"Unsupported export destination '{destination_type}'.")
    if fields.get("settings") is None:
        raise FieldInvalid("destination.settings", "a value is required.")
    return parser(fields["settings"])


def destination_from_parameters(parameters: dict[str, Any]) -> Destination:
    if parameters["type"] == "filesystem":
        return FilesystemDestination(path=parameters["path"])
    return S3Destination(
        bucket=parameters["bucket"],
        prefix=parameters["prefix"],
        endpoint_url=parameters["endpointUrl"],
        region=parameters["region"],
    )
