"""The routes Django serves under /v{n}/, walked from the URL resolver (the contract and OpenAPI tests)."""

from __future__ import annotations

import re
from typing import Any

from django.urls import URLPattern, URLResolver, get_resolver

VERSION = re.compile(r"^v<[^>]+>/")
PARTITION = re.compile(r"^partitions/<[^>]+>/")
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


def served_routes() -> set[tuple[str, str, bool]]:
    """(method, path, partitioned) of every route under /v{n}/, parameters written {name}."""
    under_version = []
    for route, callback in served_patterns(get_resolver().url_patterns):
        if VERSION.match(route):
            rest = VERSION.sub("", route)
            in_partition = bool(PARTITION.match(rest))
            path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", PARTITION.sub("", rest))
            under_version.append((path, in_partition, view_methods(callback)))
    partitioned = {path for path, in_partition, _ in under_version if in_partition}
    return {(method, path, path in partitioned) for path, _, methods in under_version for method in methods}
