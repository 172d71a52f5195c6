"""Write the QIDO search projection of instances stored before it existed (safe to rerun)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from studies.services.search_projection import search_metadata_backfill


class Command(BaseCommand):
    help = "Fill Instance.search_metadata for rows stored before migration studies.0006."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--batch-size", type=int, default=1000)

    def handle(self, *args: Any, **options: Any) -> None:
        written = search_metadata_backfill(batch_size=options["batch_size"])
        self.stdout.write(f"done: {written} instance(s) given a search projection")
