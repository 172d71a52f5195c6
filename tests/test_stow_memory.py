"""Reading a STOW part leaves large values on disk: pixel data is located, never loaded."""

from __future__ import annotations

import io
import tracemalloc

import numpy as np
import pydicom
from pydicom.data import get_testdata_file

from studies.dicom.header import header_read
from studies.dicom.reader import _pydicom_header, instance_parse, p10_normalize
from studies.dicom.streams import FileSlice
from tests.helpers import dicom_bytes

FRAMES = 64


def _multiframe() -> tuple[bytes, bytes]:
    """CT_small tiled to 512x512, 64 frames: 32 MiB of native pixel data."""
    ds = pydicom.dcmread(io.BytesIO(dicom_bytes()))
    image = np.tile(pydicom.dcmread(get_testdata_file("CT_small.dcm")).pixel_array, (4, 4))
    ds.Rows = ds.Columns = 512
    ds.NumberOfFrames = FRAMES
    ds.PixelData = image.astype("<i2").tobytes() * FRAMES
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue(), ds.PixelData


def _peak_memory(call):
    """(result, peak bytes allocated while running it)."""
    tracemalloc.start()
    try:
        result = call()
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, peak


def test_parse_does_not_load_pixel_data():
    data, pixels = _multiframe()
    pixel_bytes = len(pixels)
    part = FileSlice(io.BytesIO(data), 0, len(data))

    parsed, peak = _peak_memory(lambda: instance_parse(part, validate_all=True))

    assert peak < pixel_bytes // 8, f"parsing allocated {peak} bytes for {pixel_bytes} bytes of pixel data"
    assert parsed.number_of_frames == FRAMES
    frame_size = 512 * 512 * 2
    assert len(parsed.frame_index) == FRAMES
    first, last = parsed.frame_index[0][0], parsed.frame_index[-1][0]
    assert last[0] - first[0] == (FRAMES - 1) * frame_size and last[1] == frame_size
    assert data[first[0] : last[0] + frame_size] == pixels


def test_pydicom_fallback_does_not_load_pixel_data():
    """The pydicom reader (for files the fast header reader leaves to it) defers pixel data too."""
    data, pixels = _multiframe()
    stream = p10_normalize(FileSlice(io.BytesIO(data), 0, len(data)))
    assert header_read(stream, validate=True) is not None  # this file is normally read by the fast path

    header, peak = _peak_memory(lambda: _pydicom_header(stream, validate=True))

    assert peak < len(pixels) // 8, f"pydicom parsing allocated {peak} bytes for {len(pixels)} bytes of pixel data"
    assert header.pixel_data is not None and header.pixel_data[1] == len(pixels)
    assert data[header.pixel_data[0] : header.pixel_data[0] + 16] == pixels[:16]
