"""`manage.py operations_resume`: enqueue unfinished operations again.

For operators after an outage: an operation whose task was lost (broker down when it was
created) or whose worker died is picked up by a worker at once instead of waiting for the
broker's visibility timeout or the next worker restart. Running it while the operation is
still being worked on is harmless: the lease keeps the live runner in charge.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from operations.services import operations_resume


class Command(BaseCommand):
    help = "Enqueue every notStarted or running operation again; a worker resumes it from its checkpoint."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--older-than",
            type=int,
            default=0,
            metavar="SECONDS",
            help="only operations not updated for at least this many seconds (default: all)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        older_than = dt.timedelta(seconds=options["older_than"]) if options["older_than"] > 0 else None
        resumed = operations_resume(older_than=older_than)
        for operation in resumed:
            self.stdout.write(f"{operation.pk.hex} {operation.type} {operation.status}: enqueued")
        self.stdout.write(f"{len(resumed)} operation(s) enqueued")
