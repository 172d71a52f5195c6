"""DRF content negotiation that never refuses: DICOMweb views negotiate Accept themselves."""

from __future__ import annotations

from typing import Any

from rest_framework.negotiation import BaseContentNegotiation


class PassThroughNegotiation(BaseContentNegotiation):
    # DRF passes the view's parser and renderer lists; the stubs widen them to Iterable.
    def select_parser(self, request: Any, parsers: list[Any]) -> Any:  # type: ignore[override]
        for parser in parsers:
            if parser.media_type.split(";")[0] in (request.content_type or "").lower():
                return parser
        return parsers[0] if parsers else None

    def select_renderer(  # type: ignore[override]
        self, request: Any, renderers: list[Any], format_suffix: str | None = None
    ) -> Any:
        renderer = renderers[0]
        return renderer, renderer.media_type
