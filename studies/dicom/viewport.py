"""The `viewport` query parameter (PS3.18 §8.3.5.1.3): the size an image is scaled to, and a source region.

`viewport=vw,vh` scales the whole image to fit vw x vh, keeping its aspect ratio;
`viewport=vw,vh,sx,sy,sw,sh` first crops the sw x sh region whose top left corner is (sx, sy).
The flips PS3.18 expresses with negative sw/sh are not supported (400).
"""

from __future__ import annotations

from dataclasses import dataclass

from PIL import Image

from dicomsvc.api.query import whole_number
from dicomsvc.errors import BadRequest

MAX_SIDE = 4096  # bounds the memory a request can ask the server to fill
VIEWPORT_ERROR = (
    "The viewport '{}' is not valid: expected vw,vh or vw,vh,sx,sy,sw,sh with vw and vh from 1 to "
    f"{MAX_SIDE} and a non-negative source region."
)


@dataclass(frozen=True)
class Viewport:
    width: int
    height: int
    region: tuple[int, int, int, int] | None = None  # sx, sy, sw, sh


def viewport_parse(text: str) -> Viewport:
    found = [whole_number(piece.strip()) for piece in text.split(",")]
    numbers = [number for number in found if number is not None]
    if len(found) not in (2, 6) or len(numbers) != len(found):
        raise BadRequest(VIEWPORT_ERROR.format(text))
    width, height = numbers[:2]
    if not (1 <= width <= MAX_SIDE and 1 <= height <= MAX_SIDE):
        raise BadRequest(VIEWPORT_ERROR.format(text))
    if len(numbers) == 2:
        return Viewport(width, height)
    sx, sy, sw, sh = numbers[2:]
    if sw == 0 or sh == 0:
        raise BadRequest(VIEWPORT_ERROR.format(text))
    return Viewport(width, height, (sx, sy, sw, sh))


def image_fit(image: Image.Image, viewport: Viewport) -> Image.Image:
    """The viewport's region of `image` (clipped to it), scaled to fit the viewport, aspect ratio kept."""
    if viewport.region is not None:
        sx, sy, sw, sh = viewport.region
        right, bottom = min(sx + sw, image.width), min(sy + sh, image.height)
        if sx >= right or sy >= bottom:
            raise BadRequest("The viewport's source region lies outside the image.")
        image = image.crop((sx, sy, right, bottom))
    scale = min(viewport.width / image.width, viewport.height / image.height)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    if size == image.size:
        return image
    return image.resize(size, Image.Resampling.LANCZOS)
