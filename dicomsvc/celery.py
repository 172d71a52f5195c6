"""The Celery app. The broker defaults to kombu's filesystem transport under the data dir."""

from __future__ import annotations

import os
from typing import Any

from celery import Celery
from celery.signals import worker_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dicomsvc.settings")

app = Celery("dicomsvc")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def broker_dirs_create() -> None:
    """The filesystem broker's folders, without the partial messages of publishers that died."""
    from django.conf import settings

    from dicomsvc.broker import partials_remove

    options = settings.CELERY_BROKER_TRANSPORT_OPTIONS
    for key in ("data_folder_in", "data_folder_out", "processed_folder", "control_folder"):
        folder = options.get(key)
        if isinstance(folder, str):
            os.makedirs(folder, exist_ok=True)
    outbox = options.get("data_folder_out")
    if isinstance(outbox, str):
        partials_remove(outbox)


def database_pool_disable() -> None:
    """Workers connect per task instead of through psycopg's pool.

    The pool exists for the ASGI server, where every request runs in a fresh thread. In a
    worker its background threads kept warm shutdown from ever finishing (seen with the
    solo pool), and a worker runs its tasks one at a time anyway.
    """
    from django.conf import settings
    from django.db import connections

    alias: dict[str, Any]
    for alias in (settings.DATABASES, connections.settings):
        options = alias.get("default", {}).get("OPTIONS", {})
        options.pop("pool", None)


@worker_init.connect
def _on_worker_init(**kwargs: object) -> None:
    import django

    database_pool_disable()
    django.setup()
    from partitions.checks import partitions_guard

    partitions_guard()
    broker_dirs_create()
