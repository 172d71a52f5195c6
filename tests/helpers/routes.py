"""The routes Django serves, walked from the root URLconf (for tests that cover every route)."""

from __future__ import annotations

from typing import Any

from django.urls import URLPattern, URLResolver

HTTP_METHODS = ("get", "post", "put", "patch", "delete")


def served_patterns(patterns: list[Any], prefix: str = "") -> list[tuple[str, Any]]:
    """Every (full route, view callable) Django resolves, walking included URLconfs."""
    found = []
    for pattern in patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            found += served_patterns(pattern.url_patterns, route)
        elif isinstance(pattern, URLPattern):
            found.append((route, pattern.callback))
    return found


def view_methods(callback: Any) -> list[str]:
    """The HTTP methods a view answers: a DRF viewset's action map, or the view class's handlers."""
    actions = getattr(callback, "actions", None)
    if actions:
        return [method.upper() for method in actions]
    view_class = getattr(callback, "view_class", None)
    return [method.upper() for method in HTTP_METHODS if hasattr(view_class, method)]
