"""Rendering a frame to JPEG or PNG for viewers (the `rendered` routes, docs/api.md)."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import IO

import numpy as np
import pydicom
from PIL import Image
from pydicom.pixels import apply_modality_lut, apply_voi_lut

from dicomsvc.errors import FrameNotFound, NotAcceptable

RENDER_ERROR = "An error was encountered when attempting to convert the dicom file into an image"


@dataclass(frozen=True)
class Window:
    """A VOI window a request names (WADO-URI windowCenter/windowWidth), in modality values."""

    center: float
    width: float


def _windowed(values: np.ndarray, window: Window) -> np.ndarray:
    """The LINEAR VOI function of PS3.3 C.11.2.1.2.1, onto 0..255."""
    center, width = window.center - 0.5, window.width - 1.0
    if width <= 0:
        return np.where(values <= center, 0.0, 255.0)
    return ((values - center) / width + 0.5) * 255.0


def _to_8bit(ds: pydicom.Dataset, frame: np.ndarray, window: Window | None) -> np.ndarray:
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2"))
    if frame.ndim == 3:  # colour: pydicom already converted YBR to RGB
        if frame.dtype != np.uint8:
            frame = (frame.astype(np.float64) * 255.0 / max(float(frame.max()), 1.0)).astype(np.uint8)
        return frame
    values = apply_modality_lut(frame, ds)
    if window is not None:
        scaled = _windowed(values.astype(np.float64), window)
    else:
        if "WindowCenter" in ds or "VOILUTSequence" in ds:
            values = apply_voi_lut(values, ds)
        values = values.astype(np.float64)
        low, high = float(values.min()), float(values.max())
        scaled = (values - low) * (255.0 / (high - low)) if high > low else np.zeros_like(values)
    if photometric == "MONOCHROME1":
        scaled = 255.0 - scaled
    return scaled.clip(0, 255).astype(np.uint8)


def _fitted(image: Image.Image, rows: int | None, columns: int | None) -> Image.Image:
    """The image scaled, aspect kept, to fit `rows` x `columns` (either may be absent)."""
    if rows is None and columns is None:
        return image
    scale = min(limit / size for limit, size in ((rows, image.height), (columns, image.width)) if limit is not None)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image if size == image.size else image.resize(size, Image.Resampling.LANCZOS)


def frame_image(fileobj: IO[bytes], *, frame_number: int, window: Window | None = None) -> Image.Image:
    """Frame `frame_number` (1-based) as an 8-bit greyscale or RGB image; `window` replaces the
    file's own VOI."""
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
        return Image.fromarray(_to_8bit(ds, frame, window))
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


def frame_render(
    fileobj: IO[bytes],
    *,
    frame_number: int,
    media_type: str,
    quality: int,
    window: Window | None = None,
    rows: int | None = None,
    columns: int | None = None,
) -> bytes:
    """Frame `frame_number` (1-based) as `image/jpeg` or `image/png` bytes.

    `window` replaces the file's own VOI; `rows`/`columns` bound the image's size (WADO-URI)."""
    image = _fitted(frame_image(fileobj, frame_number=frame_number, window=window), rows, columns)
    return image_encode(image, media_type=media_type, quality=quality)
