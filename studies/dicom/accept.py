"""Accept negotiation for WADO-RS (PS3.18 §8.7), with Microsoft's rules for ties and defaults.

Instances and frames are sent in the stored syntax or transcoded to Explicit VR Little Endian;
a request naming another syntax gets the stored file or frames when they are in that syntax, and
406 otherwise (`studies.retrieve`): the server never re-encodes pixel data.
"""

from __future__ import annotations

from dataclasses import dataclass

from dicomsvc.api.mediatypes import MediaType, accept_parse
from dicomsvc.errors import BadRequest, NotAcceptable
from studies.dicom.transfer_syntaxes import EXPLICIT_VR_LITTLE_ENDIAN as EXPLICIT_VR_LE
from studies.dicom.transfer_syntaxes import FRAME_MEDIA_TYPES, is_transfer_syntax

ORIGINAL = "*"
DICOM = "application/dicom"
OCTET = "application/octet-stream"
SUPPORTED_TARGETS = {ORIGINAL, EXPLICIT_VR_LE}  # what any stored file can be served in (or 406 when undecodable)


def _requestable(ts: str) -> bool:
    """A syntax a request may name: a transcoding target, or any known syntax, served only when stored so."""
    return ts in SUPPORTED_TARGETS or is_transfer_syntax(ts)


@dataclass(frozen=True)
class Negotiated:
    multipart: bool
    media_type: str
    transfer_syntax: str  # "*" = as stored


def _candidate(media: MediaType, *, payload: str, allow_single: bool) -> Negotiated | None:
    ts_param = media.params.get("transfer-syntax")
    if media.type == "multipart/related":
        inner = media.params.get("type", payload).lower()
        if inner == "*/*":
            return Negotiated(True, payload, ts_param or ORIGINAL)
        if inner != payload:
            return None
        ts = ts_param or EXPLICIT_VR_LE
        return Negotiated(True, payload, ts) if _requestable(ts) else None
    if media.type == "*/*":
        return Negotiated(True, payload, ts_param or ORIGINAL)
    if media.type == payload and allow_single:
        ts = ts_param or EXPLICIT_VR_LE
        return Negotiated(False, payload, ts) if _requestable(ts) else None
    return None


def negotiate(accept_headers: list[str], *, payload: str, allow_single: bool) -> Negotiated:
    """Pick the best acceptable representation; 406 when there is none (or no Accept at all)."""
    ranges = [m for m in accept_parse(accept_headers) if m.q > 0]
    best: Negotiated | None = None
    best_q = -1.0
    for media in ranges:
        found = _candidate(media, payload=payload, allow_single=allow_single)
        if found is None:
            continue
        # Among equal q, a request for the original syntax wins, as in Microsoft's server.
        if media.q > best_q or (media.q == best_q and found.transfer_syntax == ORIGINAL and best and
                                best.transfer_syntax != ORIGINAL):
            best, best_q = found, media.q
    if best is None:
        raise NotAcceptable()
    return best


def _frame_image_candidate(media: MediaType) -> Negotiated | None:
    """A range naming a compressed frame media type; transfer syntax "*" = any syntax of that type."""
    multipart = media.type == "multipart/related"
    inner = media.params.get("type", "").lower() if multipart else media.type
    syntaxes = FRAME_MEDIA_TYPES.get(inner)
    if syntaxes is None:
        return None
    ts = media.params.get("transfer-syntax", ORIGINAL)
    if ts != ORIGINAL and ts not in syntaxes:
        return None
    return Negotiated(multipart, inner, ts)


def negotiate_frames(accept_headers: list[str], *, frame_count: int) -> list[Negotiated]:
    """The acceptable representations of frames, most preferred first; 406 when there is none.

    Which one is served depends on the stored syntax (`frame_representation_pick`). At equal q a
    compressed media type comes first (it names the stored bytes exactly), then the original
    syntax, as in Microsoft's server.
    """
    ranked: list[tuple[float, int, Negotiated]] = []
    for media in accept_parse(accept_headers):
        if media.q <= 0:
            continue
        image = _frame_image_candidate(media)
        if image is not None:
            ranked.append((media.q, 0, image))
            continue
        octet = _candidate(media, payload=OCTET, allow_single=True)
        if octet is not None:
            ranked.append((media.q, 1 if octet.transfer_syntax == ORIGINAL else 2, octet))
    if not ranked:
        raise NotAcceptable()
    offers = [found for _q, _rank, found in sorted(ranked, key=lambda item: (-item[0], item[1]))]
    if frame_count > 1 and not any(offer.multipart for offer in offers):
        raise BadRequest(
            "The accept header is supported for single frame retrieval, use multi-part accept header instead."
        )
    return [offer for offer in offers if offer.multipart or frame_count == 1]


def frame_representation_pick(offers: list[Negotiated], *, stored_syntax: str) -> Negotiated:
    """The first offer frames stored in `stored_syntax` can be sent in; 406 naming the syntax otherwise."""
    for offer in offers:
        if offer.media_type == OCTET:
            if offer.transfer_syntax in SUPPORTED_TARGETS or offer.transfer_syntax == stored_syntax:
                return offer
            continue
        syntaxes = FRAME_MEDIA_TYPES[offer.media_type]
        if stored_syntax in syntaxes and offer.transfer_syntax in (ORIGINAL, stored_syntax):
            return offer
    asked = ", ".join(sorted({f"{offer.media_type} ({offer.transfer_syntax})" for offer in offers}))
    raise NotAcceptable(
        f"The frames are stored in transfer syntax {stored_syntax}, which cannot be served as {asked}: the server "
        "does not re-encode pixel data. Request application/octet-stream, or the media type of the stored syntax."
    )
