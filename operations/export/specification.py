"""What an export request asks for: which instances and where they go.

`export_specification_parse` turns a request body into an `ExportSpecification` or raises a
400 that names the offending field; the specification round-trips through the operation's
`parameters` so the worker runs exactly what the request asked for.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings

from dicomsvc.errors import ApplicationError, BadRequest, InvalidRequestBody
from operations.export.destinations import Destination, destination_from_parameters, destination_parse
from operations.export.fields import FieldInvalid, object_fields, required_string
from studies.dicom.uids import uid_require

SOURCE_IDENTIFIERS = "identifiers"
VALUES = "source.settings.values"
_LEVELS = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")


@dataclass(frozen=True)
class Identifier:
    """`study`, `study/series` or `study/series/instance`."""

    study: str
    series: str | None = None
    instance: str | None = None

    def __str__(self) -> str:
        return "/".join(uid for uid in (self.study, self.series, self.instance) if uid is not None)

    def ancestors(self) -> list[str]:
        """The broader identifiers that would include this one."""
        found = [self.study] if self.series is not None else []
        if self.instance is not None:
            found.append(f"{self.study}/{self.series}")
        return found


@dataclass(frozen=True)
class ExportSpecification:
    identifiers: tuple[Identifier, ...]
    destination: Destination

    def covered(self, identifier: Identifier) -> bool:
        """Whether a broader identifier of this export includes `identifier`: it is copied with that one."""
        present = {str(other) for other in self.identifiers}
        return any(ancestor in present for ancestor in identifier.ancestors())

    def parameters(self) -> dict[str, Any]:
        return {
            "identifiers": [str(identifier) for identifier in self.identifiers],
            "destination": self.destination.parameters(),
        }


def identifier_parse(text: str) -> Identifier:
    """One identifier; raises ApplicationError naming the UID that is wrong."""
    parts = text.split("/")
    if not 1 <= len(parts) <= 3:
        raise BadRequest("expected 'study', 'study/series' or 'study/series/instance'.")
    uids = [uid_require(name=name, value=part) for name, part in zip(_LEVELS, parts, strict=False)]
    return Identifier(*uids)


def _identifiers_parse(values: Any) -> tuple[Identifier, ...]:
    if values is None or values == []:
        raise BadRequest("Missing value for property 'Values'.")
    if not isinstance(values, list):
        raise FieldInvalid(VALUES, "expected an array of strings.")
    limit = settings.DICOM_EXPORT_MAX_IDENTIFIERS
    if len(values) > limit:
        raise FieldInvalid(VALUES, f"at most {limit} identifiers are allowed in one export, got {len(values)}.")
    identifiers = []
    for index, value in enumerate(values):
        if not isinstance(value, str):
            raise FieldInvalid(f"{VALUES}[{index}]", "expected a string.")
        try:
            identifiers.append(identifier_parse(value))
        except ApplicationError as exc:
            raise FieldInvalid(f"{VALUES}[{index}]", f"'{value}': {exc.message}") from None
    # Repeats are dropped; an identifier inside a broader one stays, so that it is still
    # reported when it does not exist (`ExportSpecification.covered`).
    return tuple({str(identifier): identifier for identifier in identifiers}.values())


def _source_parse(value: Any) -> tuple[Identifier, ...]:
    if value is None:
        raise FieldInvalid("source", "a value is required.")
    source = object_fields(value, field="source", names={"type": "type", "settings": "settings"})
    source_type = required_string(source, "type", field="source.type")
    if source_type.lower() != SOURCE_IDENTIFIERS:
        raise BadRequest(f"Unsupported export source '{source_type}'.")
    if source.get("settings") is None:
        raise BadRequest("Missing value for property 'Values'.")
    source_settings = object_fields(source["settings"], field="source.settings", names={"values": "values"})
    return _identifiers_parse(source_settings.get("values"))


def export_specification_parse(*, body: Any) -> ExportSpecification:
    """Validate a request body; every problem is a 400 whose message names the field."""
    if not isinstance(body, dict):
        raise InvalidRequestBody()
    fields = object_fields(
        body, field="", names={"source": "source", "sources": "source", "destination": "destination"}
    )
    identifiers = _source_parse(fields.get("source"))
    if fields.get("destination") is None:
        raise FieldInvalid("destination", "a value is required.")
    return ExportSpecification(identifiers=identifiers, destination=destination_parse(fields["destination"]))


def export_specification_load(*, parameters: dict[str, Any]) -> ExportSpecification:
    """The specification stored on an operation by `ExportSpecification.parameters`."""
    return ExportSpecification(
        identifiers=tuple(identifier_parse(text) for text in parameters["identifiers"]),
        destination=destination_from_parameters(parameters["destination"]),
    )
