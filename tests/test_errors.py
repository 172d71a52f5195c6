"""Pins the error wire format: every domain error's status, content type and exact body."""

from __future__ import annotations

import json

import pytest

from dicomsvc import errors
from dicomsvc.api.errors import exception_handler

EXPECTED: dict[type[errors.ApplicationError], tuple[tuple, int, str]] = {
    errors.ApplicationError: ((), 400, "The request is invalid."),
    errors.BadRequest: (("Something specific.",), 400, "Something specific."),
    errors.InvalidQueryString: ((), 400, "The query string included invalid characters."),
    errors.InvalidQuery: (("Invalid query: unknown query parameter 'x'.",), 400, "Invalid query: unknown query parameter 'x'."),
    errors.InvalidUid: (("StudyInstanceUID", "1.x"), 400, "The specified StudyInstanceUID '1.x' is not a valid DICOM UID."),
    errors.InvalidFrames: (
        (),
        400,
        "The specified frames value is not valid. At least one frame must be present, "
        "and all requested frames must have value greater than 0.",
    ),
    errors.InvalidRequestBody: ((), 400, "The syntax of the request body is invalid."),
    errors.PartitionsDisabled: ((), 400, "Data partitions feature is disabled."),
    errors.PartitionNameMissing: ((), 400, "PartitionName value is missing in the route segment."),
    errors.PartitionNameInvalid: (
        ("a b",),
        400,
        "The specified PartitionName 'a b' is invalid. A PartitionName is 1 to 64 characters from A-Z, a-z, 0-9, "
        "'.', '-' and '_'.",
    ),
    errors.PartitionNotFound: (("p1",), 400, "Specified PartitionName p1 does not exist."),
    errors.NotFound: ((), 404, "The specified resource cannot be found."),
    errors.StudyNotFound: ((), 404, "The specified study cannot be found."),
    errors.SeriesNotFound: ((), 404, "The specified series cannot be found."),
    errors.InstanceNotFound: ((), 404, "The specified instance cannot be found."),
    errors.FrameNotFound: ((), 404, "The specified frame cannot be found."),
    errors.BulkDataNotFound: ((), 404, "The specified bulk data cannot be found."),
    errors.RangeNotSatisfiable: ((10,), 416, "The requested range is not satisfiable: the value is 10 bytes long."),
    errors.NotAcceptable: ((), 406, "The request headers are not acceptable"),
    errors.TranscodingNotSupported: ((), 406, "The specified transcoding is not supported."),
    errors.Conflict: ((), 409, "The request conflicts with the current state of the resource."),
    errors.PayloadTooLarge: ((10,), 413, "The request exceeded the allowed limit of 10 bytes."),
    errors.UnsupportedMediaType: (("text/x",), 415, "The specified content type 'text/x' is not supported."),
    errors.UpdateOperationActive: (
        ("0f1e",),
        409,
        "There is already an active update operation with ID '0f1e'.",
    ),
    errors.ExtendedQueryTagInvalid: (("The extended query tag(s) is missing.",), 400, "The extended query tag(s) is missing."),
    errors.ExtendedQueryTagNotFound: (
        ("00180015",), 404, "The specified extended query tag with tag path 00180015 cannot be found."
    ),
    errors.ExtendedQueryTagsAlreadyExist: ((), 409, "One or more extended query tags already exist."),
    errors.ExtendedQueryTagBusy: (("00180015",), 400, "The extended query tag '00180015' is being processed."),
    errors.ReindexOperationActive: (
        ("0f1e", "http://h/v2/operations/0f1e"), 409, "There is already an active re-index operation with ID '0f1e'."
    ),
    errors.AuditHeaderTooLarge: (
        (2048, "X-MS-AZUREDICOM-AUDIT-SITE", 3072),
        400,
        "The maximum length of a custom audit header value is 2048. "
        "The supplied custom audit header 'X-MS-AZUREDICOM-AUDIT-SITE' has length of 3072.",
    ),
    errors.TooManyAuditHeaders: (
        (10, 12),
        400,
        "The maximum number of custom audit headers allowed is 10. The number of custom audit headers supplied is 12.",
    ),
    errors.ServiceUnavailable: ((), 503, "The service is temporarily unavailable. Please retry the request."),
    errors.WorkitemNotFound: ((), 404, "The workitem instance is not found."),
    errors.WorkitemAlreadyExists: (
        (), 409, "The workitem instance already exists. Try creating using a different UID.",
    ),
    errors.WorkitemUidMismatch: ((), 400, "SOPInstanceUID in the payload does not match the workitem query parameter."),
    errors.WorkitemDatasetInvalid: (("The required tag '(0074,1200)' is missing.",), 400,
                                    "The required tag '(0074,1200)' is missing."),
    errors.WorkitemStateInvalid: (("The target URI did not reference a claimed Workitem.",), 400,
                                  "The target URI did not reference a claimed Workitem."),
    errors.WorkitemStateConflict: (("The UPS is already COMPLETED.",), 409, "The UPS is already COMPLETED."),
    errors.WorkitemChanged: (
        (), 409, "The workitem was changed by another request at the same time. Retry the request.",
    ),
}


def _all_subclasses(cls: type) -> set[type]:
    found = {cls}
    for sub in cls.__subclasses__():
        found |= _all_subclasses(sub)
    return found


def test_every_domain_error_is_pinned():
    """A new error type must be added to EXPECTED, so its wire format is decided on purpose."""
    defined = {c for c in _all_subclasses(errors.ApplicationError) if c.__module__ == "dicomsvc.errors"}
    defined -= {errors.FailedAttributes}  # DICOM JSON body, pinned below
    assert defined <= set(EXPECTED), sorted(c.__name__ for c in defined - set(EXPECTED))


@pytest.mark.parametrize("error_class", list(EXPECTED), ids=lambda c: c.__name__)
def test_error_wire_format(error_class):
    args, status, message = EXPECTED[error_class]
    response = exception_handler(error_class(*args), {})
    assert response is not None
    assert response.status_code == status
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert response.content.decode() == message


def test_unsatisfiable_range_names_the_length():
    response = exception_handler(errors.RangeNotSatisfiable(10), {})
    assert response is not None
    assert response["Content-Range"] == "bytes */10"


def test_a_conflicting_reindex_answers_with_its_location():
    response = exception_handler(errors.ReindexOperationActive("0f1e", "http://h/v2/operations/0f1e"), {})
    assert response is not None
    assert response["Location"] == "http://h/v2/operations/0f1e"


def test_unknown_route_is_plain_text_404(client):
    response = client.get("/v2/nothing-here")
    assert response.status_code == 404
    assert response["Content-Type"] == "text/plain; charset=utf-8"


def test_query_string_with_angle_bracket_is_400(client, db):
    response = client.get("/v2/studies/1.2.3/metadata?x=<script>", HTTP_ACCEPT="application/dicom+json")
    assert (response.status_code, response.content.decode()) == (400, "The query string included invalid characters.")


def test_failed_attributes_is_a_dicom_json_dataset():
    response = exception_handler(errors.FailedAttributes(["DICOM100: (0008,0016) - Updating the tag is not supported"]), {})
    assert response.status_code == 400
    assert response["Content-Type"] == "application/dicom+json"
    assert json.loads(response.content) == {
        "00741048": {
            "vr": "SQ",
            "Value": [{"00000902": {"vr": "LO", "Value": ["DICOM100: (0008,0016) - Updating the tag is not supported"]}}],
        }
    }
