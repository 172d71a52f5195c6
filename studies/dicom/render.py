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


def _to_8bit(ds: pydicom.Dataset, frame: np.ndarray) -> np.ndarray:
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2"))
    if frame.ndim == 3:  # colour: pydicom already converted YBR to RGB
        if frame.dtype != np.uint8:
            frame = (frame.astype(np.float64) * 255.0 / max(float(frame.max()), 1.0)).astype(np.uint8)
        return frame
    values = apply_modality_lut(frame, ds)
    if "WindowCenter" in ds or "VOILUTSequence" in ds:
        values = apply_voi_lut(values, ds)
    values = values.astype(np.float64)
    low, high = float(values.min()), float(values.max())
    scaled = (values - low) * (255.0 / (high - low)) if high > low else np.zeros_like(values)
    if photometric == "MONOCHROME1":
        scaled = 255.0 - scaled
    return scaled.clip(0, 255).astype(np.uint8)


def frame_image(fileobj: IO[bytes], *, frame_number: int) -> Image.Image:
    """Frame `frame_number` (1-based) as an 8-bit greyscale or RGB image."""
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
        return Image.fromarray(_to_8bit(ds, frame))
    except Exception as exc:  # decoders raise many types
        raise NotAcceptable(RENDER_ERROR) from exc


def image_encode(image: Image.Image, *, media_type: str, quality: int) -> bytes:
    """`image` as `image/jpeg` or `image/png` bytes."""
    out = io.BytesIO()
    try:
        if media_type == "image/png":
            image.save(out, format="PNG")
        else:
            image.convert("RGB" if image.mode not in ("L", "RGB") else image.mode).save(
                out, format="JPEG", quality=quality
            )
    except Exception as exc:
        raise NotAcceptable(RENDER_ERROR) from exc
    return out.getvalue()


def frame_render(fileobj: IO[bytes], *, frame_number: int, media_type: str, quality: int) -> bytes:
    """Frame `frame_number` (1-based) as `image/jpeg` or `image/png` bytes."""
    image = frame_image(fileobj, frame_number=frame_number)
    return image_encode(image, media_type=media_type, quality=quality)
