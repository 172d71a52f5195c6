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


class DataPartitionsFeatureCannotBeDisabledException(Exception):
    """Start-up refuses to run with partitions off once data has been partitioned."""

    def __init__(self) -> None:
        super().__init__(
            "Data partitions feature cannot be disabled while existing data has already been partitioned. "
            "Partitions other than Microsoft.Default exist, and with DICOM_ENABLE_DATA_PARTITIONS=false their "
            "data would be unreachable: set DICOM_ENABLE_DATA_PARTITIONS=true."
        )
