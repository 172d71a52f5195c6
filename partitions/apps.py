from django.apps import AppConfig


class PartitionsConfig(AppConfig):
    name = "partitions"
    verbose_name = "Data partitions"

    def ready(self) -> None:
        from partitions import checks  # noqa: F401  (registers the start-up guard)
