"""Which function performs each operation type: the one table the runner reads.

A handler does the work under the run's lease, reports progress through it, and returns
the final status; the runner starts and finishes the operation around it. A type without
a handler here fails when run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from operations.export.services import export_execute
from operations.models import OperationStatus, OperationType
from operations.reindex.services import reindex_execute, reindex_help
from operations.services import OperationRun
from operations.update.services import update_execute

Handler = Callable[[OperationRun], OperationStatus]
# Work other workers may do beside an operation's runner, given the operation's id.
Helper = Callable[[Any], None]

HANDLERS: dict[str, Handler] = {
    OperationType.UPDATE: update_execute,
    OperationType.EXPORT: export_execute,
    OperationType.REINDEX: reindex_execute,
}

HELPERS: dict[str, Helper] = {
    OperationType.REINDEX: reindex_help,
}
