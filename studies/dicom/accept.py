"""Accept negotiation for WADO-RS (PS3.18 §8.7), with Microsoft's rules for ties and defaults."""

from __future__ import annotations

from dataclasses import dataclass

from dicomsvc.api.mediatypes import MediaType, accept_parse
from dicomsvc.errors import BadRequest, NotAcceptable
from studies.dicom.transfer_syntaxes import EXPLICIT_VR_LITTLE_ENDIAN as EXPLICIT_VR_LE

ORIGINAL = "*"
DICOM = "application/dicom"
OCTET = "application/octet-stream"
SUPPORTED_TARGETS = {ORIGINAL, EXPLICIT_VR_LE}


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
        return Negotiated(True, payload, ts) if ts in SUPPORTED_TARGETS else None
    if media.type == "*/*":
        return Negotiated(True, payload, ts_param or ORIGINAL)
    if media.type == payload and allow_single:
        ts = ts_param or EXPLICIT_VR_LE
        return Negotiated(False, payload, ts) if ts in SUPPORTED_TARGETS else None
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


def negotiate_frames(accept_headers: list[str], *, frame_count: int) -> Negotiated:
    found = negotiate(accept_headers, payload=OCTET, allow_single=True)
    if not found.multipart and frame_count > 1:
        raise BadRequest(
            "The accept header is supported for single frame retrieval, use multi-part accept header instead."
        )
    return found
