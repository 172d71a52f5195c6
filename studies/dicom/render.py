"""Rendering a frame to JPEG or PNG for viewers (the `rendered` routes, docs/api.md)."""

from __future__ import annotations

import io
from typing import IO

import numpy as np
import pydicom
from PIL import Image
from pydicom.pixels import apply_modality_lut, apply_voi_lut

from dicomsvc.errors import FrameNotFound, NotAcceptable

RENDER_ERROR = "An error was encountered when attempting to convert the dicom file into an image"


def _to_8bit(ds: pydicom.Dataset, frame: np.ndarray, window: tuple[float, float] | None = None) -> np.ndarray:
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2"))
    if frame.ndim == 3:  # colour: pydicom already converted YBR to RGB
        if frame.dtype != np.uint8:
            frame = (frame.astype(np.float64) * 255.0 / max(float(frame.max()), 1.0)).astype(np.uint8)
        return frame
    values = apply_modality_lut(frame, ds)
    if window is not None:
        # An explicit window (center, width) on the modality values, linear as PS3.3 C.11.2.1.2.
        center, width = window
        values = values.astype(np.float64).clip(center - width / 2, center + width / 2)
        low, high = center - width / 2, center + width / 2
    else:
        if "WindowCenter" in ds or "VOILUTSequence" in ds:
            values = apply_voi_lut(values, ds)
        values = values.astype(np.float64)
        low, high = float(values.min()), float(values.max())
    scaled = (values - low) * (255.0 / (high - low)) if high > low else np.zeros_like(values)
    if photometric == "MONOCHROME1":
        scaled = 255.0 - scaled
    return scaled.clip(0, 255).astype(np.uint8)


def frame_render(
    fileobj: IO[bytes], *, frame_number: int, media_type: str, quality: int, window: tuple[float, float] | None = None
) -> bytes:
    """Frame `frame_number` (1-based) as `image/jpeg` or `image/png` bytes; `window` (center,
    width) replaces the dataset's own VOI for greyscale images (the admin's presets)."""
    fileobj.seek(0)
    try:
        ds = pydicom.dcmread(fileobj)
    except Exception as exc:
        raise NotAcceptable(RENDER_ERROR) from exc
    if "PixelData" not in ds:
        raise FrameNotFound()
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    if frame_number > frames:
        raise FrameNotFound()
    try:
        pixels = ds.pixel_array
        frame = pixels[frame_number - 1] if frames > 1 else pixels
        image = Image.fromarray(_to_8bit(ds, frame, window))
        out = io.BytesIO()
        if media_type == "image/png":
            image.save(out, format="PNG")
        else:
            image.convert("RGB" if image.mode not in ("L", "RGB") else image.mode).save(
                out, format="JPEG", quality=quality
            )
    except Exception as exc:  # decoders raise many types
        raise NotAcceptable(RENDER_ERROR) from exc
    return out.getvalue()
