"""Properties of the parsers a client reaches with arbitrary input (Hypothesis).

Each holds for every input Hypothesis tries, not for a list of examples: the DICOM reader
either reads a file or refuses it with NotDicom, and what it reads can be stored (the row's
JSON, the search projection); the multipart parser gives back exactly the parts it was
given, or a 400; the QIDO and change-feed parameter parsers answer a query or a 400, never
anything else. `make drill` runs the same parsers black-box through the server.
"""

from __future__ import annotations

import io
import string

import pytest
from django.http import QueryDict
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from changefeed.params import feed_query_parse
from dicomsvc.errors import ApplicationError, BadRequest
from studies.dicom.dicomjson import json_dumps
from studies.dicom.multipart import multipart_parse
from studies.dicom.reader import NotDicom, instance_parse
from studies.search.attributes import PROJECTION_TAGS, Resource
from studies.search.query import search_query_parse
from studies.search.results import search_projection
from studies.views.retrieve import parse_frames
from tests.helpers import dicom_bytes, nested_bytes

# The core attributes and those of two extended query tags (BodyPartExamined, ProtocolName):
# the projection keys the store passes, without the database the tag list is read from.
PROJECTION_KEYS = frozenset(f"{tag:08X}" for tag in PROJECTION_TAGS) | {"00180015", "00181030"}

# No deadline: a slow machine must not fail a property. The example database stays local.
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

SEEDS = {
    "explicit": dicom_bytes("CT_small.dcm"),
    "implicit": dicom_bytes("MR_small_implicit.dcm"),
    "big endian": dicom_bytes("MR_small_bigendian.dcm"),
    "encapsulated": dicom_bytes("JPEG2000.dcm"),
    "nested": nested_bytes(3, "CT_small.dcm"),
}


@st.composite
def mutated_files(draw: st.DrawFn) -> bytes:
    """A valid file with a few bytes overwritten, inserted or removed, or cut short."""
    data = bytearray(SEEDS[draw(st.sampled_from(sorted(SEEDS)))])
    for _ in range(draw(st.integers(1, 6))):
        position = draw(st.integers(128, len(data) - 1))
        kind = draw(st.sampled_from(["set", "insert", "delete", "cut", "length"]))
        if kind == "set":
            data[position] = draw(st.integers(0, 255))
        elif kind == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "delete":
            del data[position : position + draw(st.integers(1, 16))]
        elif kind == "cut":
            del data[position:]
        else:  # a length field's worth of 0xFF: undefined lengths where none belong, huge values
            data[position : position + 4] = b"\xff\xff\xff\xff"
        if len(data) <= 132:
            break
    return bytes(data)


@PROPERTY
@given(data=mutated_files(), validate=st.booleans())
def test_the_reader_reads_or_refuses_and_what_it_reads_can_be_stored(data, validate):
    try:
        parsed = instance_parse(io.BytesIO(data), validate_all=validate)
    except NotDicom as exc:
        assert str(exc).startswith("The DICOM instance is invalid")
        return
    # What the store writes into the row: none of it may raise for a file the reader accepted.
    assert isinstance(json_dumps(parsed.metadata), str)
    assert isinstance(search_projection(parsed.metadata, keys=PROJECTION_KEYS), str)
    assert parsed.frame_index_text == "" or parsed.frame_index_text.startswith("[")
    assert set(parsed.uids) == {"SOPClassUID", "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"}


payloads = st.lists(st.binary(max_size=300), min_size=1, max_size=5)
boundaries = st.text(alphabet=string.ascii_letters + string.digits + "'()+_,-./:=?", min_size=1, max_size=70)


@PROPERTY
@given(parts=payloads, boundary=boundaries, preamble=st.booleans(), padding=st.sampled_from(["", " ", "\t "]))
def test_multipart_gives_back_exactly_the_parts_it_was_given(parts, boundary, preamble, padding):
    delimiter = f"--{boundary}".encode()
    # A part whose bytes run into a delimiter line is not a multipart body of those parts.
    assume(all((part + b"\r\n" + delimiter).find(b"\r\n" + delimiter) == len(part) for part in parts))
    body = b"preamble text\r\n" if preamble else b""
    for part in parts:
        body += delimiter + padding.encode() + b"\r\nContent-Type: application/dicom\r\n\r\n" + part + b"\r\n"
    body += delimiter + b"--\r\n"
    parsed = multipart_parse(raw=io.BytesIO(body), size=len(body), boundary=boundary)
    assert [part.body.read() for part in parsed] == parts
    assert {part.content_type for part in parsed} == {"application/dicom"}


@PROPERTY
@given(body=st.binary(max_size=400), boundary=boundaries)
@example(body=b"--b\r\n\r\n\r\n--b--", boundary="b")
@example(body=b"--b\r\nContent-Type application/dicom\r\n\r\nx\r\n--b--", boundary="b")
def test_multipart_parses_or_answers_400(body, boundary):
    try:
        parts = multipart_parse(raw=io.BytesIO(body), size=len(body), boundary=boundary)
    except BadRequest:
        return
    for part in parts:
        assert 0 <= part.body.size <= len(body)


keys = st.sampled_from(
    ["limit", "offset", "fuzzymatching", "includefield", "StudyDate", "PatientName", "00100020", "StudyInstanceUID",
     "SeriesInstanceUID", "SOPInstanceUID", "Modality", "ModalitiesInStudy", "0020000D", "x", "PatientBirthDate",
     "AccessionNumber", "ReferringPhysicianName", "SOPClassUID", "all"]
)  # fmt: skip
values = st.one_of(
    st.text(max_size=40),
    st.from_regex(r"[+-]?[0-9]{1,25}", fullmatch=True),
    st.from_regex(r"[0-9]{8}-[0-9]{0,8}", fullmatch=True),
    st.from_regex(r"([0-9]+\.){0,5}[0-9]+([\\,]([0-9]+\.)*[0-9]+)*", fullmatch=True),
    st.just("1" * 5000),
    st.sampled_from(["true", "false", "all", "*", "", "\\", ",", "?*", "00100010", "PatientName"]),
)


@pytest.mark.django_db  # the parser looks up the extended query tags (cached per process)
@PROPERTY
@given(
    params=st.lists(st.tuples(keys, st.lists(values, min_size=1, max_size=3)), max_size=6),
    resource=st.sampled_from(list(Resource)),
    api_version=st.sampled_from([1, 2]),
)
@example(params=[("offset", ["1" * 5000])], resource=Resource.STUDIES, api_version=2)
@example(params=[("limit", ["-" + "9" * 4400])], resource=Resource.STUDIES, api_version=2)
def test_qido_parameters_give_a_query_or_a_400(params, resource, api_version):
    try:
        query = search_query_parse(params=params, resource=resource, api_version=api_version)
    except ApplicationError as exc:
        assert exc.status_code == 400
        return
    assert 1 <= query.limit <= 200
    assert query.offset >= 0


@PROPERTY
@given(
    params=st.dictionaries(
        st.sampled_from(["offset", "limit", "includeMetadata", "startTime", "endTime", "x"]), values, max_size=5
    ),
    api_version=st.sampled_from([1, 2]),
)
@example(params={"offset": "1" * 5000}, api_version=1)
def test_change_feed_parameters_give_a_query_or_a_400(params, api_version):
    query = QueryDict(mutable=True)
    for key, value in params.items():
        query[key] = value
    try:
        parsed = feed_query_parse(query, api_version=api_version)
    except ApplicationError as exc:
        assert exc.status_code == 400
        return
    assert parsed.offset >= 0


@PROPERTY
@given(text=st.one_of(st.text(max_size=30), st.from_regex(r"[0-9, ]{1,40}", fullmatch=True), st.just("1" * 4301)))
def test_frame_lists_give_positive_numbers_or_a_400(text):
    try:
        numbers = parse_frames(text)
    except ApplicationError as exc:
        assert exc.status_code == 400
        return
    assert numbers and all(0 < number < 10**10 for number in numbers)


def test_an_offset_table_longer_than_the_file_is_no_frame_index():
    """Found by `make drill`: the Basic Offset Table item's length was read as is."""
    data = bytearray(dicom_bytes("JPEG2000.dcm"))
    table = data.index(b"\xfe\xff\x00\xe0", data.index(b"\xe0\x7f\x10\x00"))  # the first item of Pixel Data
    data[table + 4 : table + 8] = (222_194_340).to_bytes(4, "little")
    parsed = instance_parse(io.BytesIO(bytes(data)), validate_all=True)
    assert parsed.frame_index is None
