"""Typed domain errors. Services raise these; one handler maps them to HTTP.

Messages follow Microsoft's server word for word where the reference records them.
"""

from __future__ import annotations


class ApplicationError(Exception):
    """Base of every error a client can cause; `status_code` is its HTTP status."""

    status_code = 400
    default_message = "The request is invalid."
    def __init__(self, message: str | None = None) -> None:
        self.message = message or self.default_message
        super().__init__(self.message)

    def response_headers(self) -> dict[str, str]:
        """Headers the error response carries besides the message (416's Content-Range, the
        `Location` of a conflicting operation)."""
        return {}


class BadRequest(ApplicationError):
    status_code = 400


class InvalidQueryString(BadRequest):
    default_message = "The query string included invalid characters."


class InvalidQuery(BadRequest):
    """A QIDO-RS query that cannot be run; the message names the offending parameter."""


class InvalidUid(BadRequest):
    def __init__(self, name: str, value: str) -> None:
        super().__init__(f"The specified {name} '{value}' is not a valid DICOM UID.")


class InvalidFrames(BadRequest):
    default_message = (
        "The specified frames value is not valid. At least one frame must be present, "
        "and all requested frames must have value greater than 0."
    )


class InvalidRequestBody(BadRequest):
    default_message = "The syntax of the request body is invalid."


class PartitionsDisabled(BadRequest):
    default_message = "Data partitions feature is disabled."


class PartitionNameMissing(BadRequest):
    default_message = "PartitionName value is missing in the route segment."


class PartitionNameInvalid(BadRequest):
    def __init__(self, name: str) -> None:
        super().__init__(
            f"The specified PartitionName '{name}' is invalid. A PartitionName is 1 to 64 characters "
            "from A-Z, a-z, 0-9, '.', '-' and '_'."
        )


class AuditHeaderTooLarge(BadRequest):
    def __init__(self, maximum: int, name: str, length: int) -> None:
        super().__init__(
            f"The maximum length of a custom audit header value is {maximum}. "
            f"The supplied custom audit header '{name}' has length of {length}."
        )


class TooManyAuditHeaders(BadRequest):
    def __init__(self, maximum: int, count: int) -> None:
        super().__init__(
            f"The maximum number of custom audit headers allowed is {maximum}. "
            f"The number of custom audit headers supplied is {count}."
        )


class PartitionNotFound(BadRequest):
    def __init__(self, name: str) -> None:
        super().__init__(f"Specified PartitionName {name} does not exist.")


class NotFound(ApplicationError):
    status_code = 404
    default_message = "The specified resource cannot be found."


class StudyNotFound(NotFound):
    default_message = "The specified study cannot be found."


class SeriesNotFound(NotFound):
    default_message = "The specified series cannot be found."


class InstanceNotFound(NotFound):
    default_message = "The specified instance cannot be found."


class FrameNotFound(NotFound):
    default_message = "The specified frame cannot be found."


class BulkDataNotFound(NotFound):
    default_message = "The specified bulk data cannot be found."


class RangeNotSatisfiable(ApplicationError):
    """A Range none of whose bytes exist (RFC 9110 §15.5.17): the answer names the value's length."""

    status_code = 416

    def __init__(self, length: int) -> None:
        super().__init__(f"The requested range is not satisfiable: the value is {length} bytes long.")
        self.length = length

    def response_headers(self) -> dict[str, str]:
        return {"Content-Range": f"bytes */{self.length}"}


class NotAcceptable(ApplicationError):
    status_code = 406
    default_message = "The request headers are not acceptable"


class TranscodingNotSupported(NotAcceptable):
    default_message = "The specified transcoding is not supported."


class Conflict(ApplicationError):
    status_code = 409
    default_message = "The request conflicts with the current state of the resource."


class UpdateOperationActive(Conflict):
    """Only one bulk update runs at a time, as in Microsoft's server."""

    def __init__(self, operation_id: str) -> None:
        super().__init__(f"There is already an active update operation with ID '{operation_id}'.")


class ExtendedQueryTagInvalid(BadRequest):
    """A tag in an extended query tag request, or a tag path in a route, that cannot be used."""


class ExtendedQueryTagNotFound(NotFound):
    def __init__(self, path: str) -> None:
        super().__init__(f"The specified extended query tag with tag path {path} cannot be found.")


class ExtendedQueryTagsAlreadyExist(Conflict):
    default_message = "One or more extended query tags already exist."


class ExtendedQueryTagBusy(BadRequest):
    def __init__(self, path: str) -> None:
        super().__init__(f"The extended query tag '{path}' is being processed.")


class ReindexOperationActive(Conflict):
    """Only one reindex runs at a time; the answer points at it."""

    def __init__(self, operation_id: str, location: str) -> None:
        super().__init__(f"There is already an active re-index operation with ID '{operation_id}'.")
        self.location = location

    def response_headers(self) -> dict[str, str]:
        return {"Location": self.location}


class FailedAttributes(BadRequest):
    """400 whose body is a DICOM JSON dataset: a FailedAttributesSequence of ErrorComments."""

    def __init__(self, comments: list[str]) -> None:
        super().__init__("; ".join(comments))
        self.comments = comments

    def dataset(self) -> dict[str, object]:
        items = [{"00000902": {"vr": "LO", "Value": [comment]}} for comment in self.comments]
        return {"00741048": {"vr": "SQ", "Value": items}}


class PayloadTooLarge(ApplicationError):
    status_code = 413

    def __init__(self, limit: int) -> None:
        super().__init__(f"The request exceeded the allowed limit of {limit} bytes.")


class UnsupportedMediaType(ApplicationError):
    status_code = 415

    def __init__(self, content_type: str, message: str | None = None) -> None:
        super().__init__(message or f"The specified content type '{content_type}' is not supported.")


class ServiceUnavailable(ApplicationError):
    status_code = 503
    default_message = "The service is temporarily unavailable. Please retry the request."


# --- Workitems (UPS-RS) ---------------------------------------------------------------------------
# Named after Microsoft's resources (DicomCoreResource) for the same conditions; docs/workitems.md
# says which texts are Microsoft's verbatim.


class WorkitemNotFound(NotFound):
    default_message = "The workitem instance is not found."


class WorkitemAlreadyExists(Conflict):
    default_message = "The workitem instance already exists. Try creating using a different UID."


class WorkitemUidMismatch(BadRequest):
    default_message = "SOPInstanceUID in the payload does not match the workitem query parameter."


class WorkitemDatasetInvalid(BadRequest):
    """A dataset that breaks a requirement of PS3.4 Table CC.2.5-3 (or the final-state table)."""


class WorkitemStateInvalid(BadRequest):
    """A request the workitem's current state does not allow (wrong transaction UID, final state)."""


class WorkitemStateConflict(Conflict):
    """Cancellation refused by the state (409), with the message also sent as a Warning header."""


class WorkitemChanged(Conflict):
    """The compare-and-swap lost: another request changed the workitem since it was read."""

    default_message = "The workitem was changed by another request at the same time. Retry the request."


class DataPartitionsFeatureCannotBeDisabledException(Exception):
    """Start-up refuses to run with partitions off once data has been partitioned."""

    def __init__(self) -> None:
        super().__init__(
            "Data partitions feature cannot be disabled while existing data has already been partitioned. "
            "Partitions other than Microsoft.Default exist, and with DICOM_ENABLE_DATA_PARTITIONS=false their "
            "data would be unreachable: set DICOM_ENABLE_DATA_PARTITIONS=true."
        )
