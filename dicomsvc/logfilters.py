"""Logging filters named in settings.LOGGING (a module apart: logging is configured before apps load)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.core.exceptions import PermissionDenied


def permission_denied_without_traceback() -> Callable[[logging.LogRecord], bool]:
    """A 403 is an expected answer: logged as Django's one line ("Forbidden (Permission
    denied): /admin/..."), without the traceback Django attaches to it."""

    def strip(record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], PermissionDenied):
            record.exc_info = None
            record.exc_text = None
        return True

    return strip
