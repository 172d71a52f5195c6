"""STOW bodies in memory and on disk: the same parts, the same bytes, no copies kept twice."""

from __future__ import annotations

import io
import os
import tempfile

import pytest

from dicomsvc.api.body import BodyCollector
from dicomsvc.errors import BadRequest
from studies.blobstore import DurableFileSystemStorage
from studies.dicom.multipart import multipart_parse
from studies.dicom.reader import PREAMBLE, p10_normalize
from studies.dicom.streams import CHUNK, ConcatReader

BOUNDARY = "b0und4ry"


def _body(parts: list[bytes], *, preamble: bytes = b"") -> bytes:
    out = [preamble]
    for data in parts:
        out.append(f"--{BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n".encode() + data + b"\r\n")
    out.append(f"--{BOUNDARY}--".encode())
    return b"".join(out)


def _on_disk(data: bytes) -> tempfile.SpooledTemporaryFile:
    spool = tempfile.SpooledTemporaryFile(max_size=0, mode="w+b")
    spool.rollover()
    spool.write(data)
    spool.seek(0)
    return spool


def _parts(raw, size: int) -> list[bytes]:
    parsed = multipart_parse(raw=raw, size=size, boundary=BOUNDARY)
    return [part.body.read() for part in parsed]


@pytest.mark.parametrize("preamble", [b"", b"preamble text\r\n"])
def test_a_body_in_memory_and_on_disk_give_the_same_parts(preamble):
    # The second part spans the 1 MiB scanning window of a body on disk.
    parts = [b"\x01" * 1000, os.urandom(CHUNK + 5000), b"", b"tail \r\n-- not a delimiter"]
    data = _body(parts, preamble=preamble)

    assert _parts(io.BytesIO(data), len(data)) == parts
    assert _parts(_on_disk(data), len(data)) == parts


def test_a_header_block_past_its_limit_fails_alike_in_memory_and_on_disk():
    data = f"--{BOUNDARY}\r\nX-Long: {'a' * 20000}\r\n\r\nbody\r\n--{BOUNDARY}--".encode()
    for raw in (io.BytesIO(data), _on_disk(data)):
        with pytest.raises(BadRequest):
            multipart_parse(raw=raw, size=len(data), boundary=BOUNDARY)


def test_the_collector_keeps_a_small_body_as_one_object_and_spools_a_large_one(settings):
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 1000
    small = BodyCollector()
    for chunk in (b"a" * 400, b"b" * 600):
        small.write(chunk)
    body = small.finish()
    assert isinstance(body, io.BytesIO) and body.read() == b"a" * 400 + b"b" * 600

    large = BodyCollector()
    for chunk in (b"a" * 600, b"b" * 600, b"c" * 600):
        large.write(chunk)
    spooled = large.finish()
    assert not isinstance(spooled, io.BytesIO)
    assert spooled._rolled and os.fstat(spooled.fileno()).st_size == 1800  # on disk, not in memory
    assert spooled.read() == b"a" * 600 + b"b" * 600 + b"c" * 600
    assert large.size == 1800
    large.close()


def test_a_reader_over_memory_reads_and_chunks_the_same_bytes_as_over_a_file():
    content = os.urandom(3 * 1000 + 17)
    data = b"junk" + content + b"more"
    for body in (io.BytesIO(data), _on_disk(data)):
        reader = ConcatReader(b"PREFIX", body, 4, 4 + len(content))
        expected = b"PREFIX" + content
        assert reader.size == len(expected)
        assert b"".join(bytes(chunk) for chunk in reader.chunks(1000)) == expected
        reader.seek(3)
        assert reader.read(10) == expected[3:13]  # across the prefix and the body
        reader.seek(len(expected) - 5)
        assert reader.read(100) == expected[-5:]
        assert reader.read(1) == b""


def test_a_blob_written_from_memory_holds_exactly_the_normalised_file(tmp_path):
    # A P10 file without preamble gets one: prefix bytes plus views of the request's buffer.
    dataset = b"\x02\x00\x00\x00UL\x04\x00" + os.urandom(CHUNK + 123)
    data = _body([dataset])
    (part,) = multipart_parse(raw=io.BytesIO(data), size=len(data), boundary=BOUNDARY)
    stream = p10_normalize(part.body)
    assert [type(chunk) for chunk in stream.chunks()] == [bytes, memoryview, memoryview]  # no copies

    DurableFileSystemStorage(location=tmp_path).write_new("1/abc/7.dcm", stream)

    assert (tmp_path / "1/abc/7.dcm").read_bytes() == PREAMBLE + dataset
