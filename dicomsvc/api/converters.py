"""Path converters. UID segments accept anything so a malformed UID gets a 400, not a 404."""

from __future__ import annotations


class ApiVersionConverter:
    regex = r"1\.0-prerelease|1|2"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


class SegmentConverter:
    regex = r"[^/]+"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value
