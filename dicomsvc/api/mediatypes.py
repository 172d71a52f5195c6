"""Parsing of media types and Accept headers (RFC 9110 §8.3, §12.5.1)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from dicomsvc.errors import UnsupportedMediaType

_TOKEN_PARAM = re.compile(r'\s*;\s*([^\s=;]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;,\s]*)')


@dataclass(frozen=True)
class MediaType:
    type: str
    params: dict[str, str] = field(default_factory=dict)

    @property
    def q(self) -> float:
        try:
            return float(self.params.get("q", "1"))
        except ValueError:
            return 0.0


def _parse_one(text: str) -> MediaType | None:
    text = text.strip()
    if not text:
        return None
    match = re.match(r"([^\s;]+)", text)
    if not match:
        return None
    media = match.group(1).lower()
    params: dict[str, str] = {}
    rest = text[match.end() :]
    for pm in _TOKEN_PARAM.finditer(rest):
        value = pm.group(2)
        if value.startswith('"') and value.endswith('"') and len(value) >= 2:
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        params[pm.group(1).lower()] = value
    return MediaType(media, params)


def media_type_parse(text: str) -> MediaType:
    """A request body's Content-Type; UnsupportedMediaType when the header names no media type."""
    media = _parse_one(text)
    if media is None:
        raise UnsupportedMediaType(text)
    return media


def _split_commas(text: str) -> list[str]:
    """Split on commas that are outside quoted strings."""
    parts, current, quoted, escaped = [], [], False, False
    for ch in text:
        if escaped:
            current.append(ch)
            escaped = False
            continue
        if ch == "\\" and quoted:
            escaped = True
            current.append(ch)
            continue
        if ch == '"':
            quoted = not quoted
        if ch == "," and not quoted:
            parts.append("".join(current))
            current = []
            continue
        current.append(ch)
    parts.append("".join(current))
    return parts


def accept_parse(headers: list[str]) -> list[MediaType]:
    """All media ranges of one or several Accept headers, highest q first (stable)."""
    ranges: list[MediaType] = []
    for header in headers:
        for item in _split_commas(header):
            parsed = _parse_one(item)
            if parsed is not None:
                ranges.append(parsed)
    return sorted(ranges, key=lambda m: -m.q)


def accept_headers(request: object) -> list[str]:
    """The request's Accept header; a request without one accepts anything (RFC 9110 §12.5.1)."""
    meta = getattr(request, "META", {})
    value = meta.get("HTTP_ACCEPT")
    return [value] if value is not None else ["*/*"]


def accepts_dicom_json(request: object) -> bool:
    """The DICOM JSON gate of QIDO and metadata: some range must match application/dicom+json."""
    for media in accept_parse(accept_headers(request)):
        if media.q <= 0:
            continue
        if media.type in ("application/dicom+json", "*/*", "application/*", "application/json"):
            return True
    return False
