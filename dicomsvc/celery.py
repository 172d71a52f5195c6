"""The Celery app. The broker defaults to kombu's filesystem transport under the data dir."""

from __future__ import annotations

import os

from celery import Celery
from celery.signals import worker_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dicomsvc.settings")

app = Celery("dicomsvc")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def broker_dirs_create() -> None:
    from django.conf import settings

    options = settings.CELERY_BROKER_TRANSPORT_OPTIONS
    for key in ("data_folder_in", "data_folder_out", "processed_folder", "control_folder"):
        folder = options.get(key)
        if isinstance(folder, str):
            os.makedirs(folder, exist_ok=True)


@worker_init.connect
def _on_worker_init(**kwargs: object) -> None:
    import django

    django.setup()
    from partitions.checks import partitions_guard

    partitions_guard()
    broker_dirs_create()
