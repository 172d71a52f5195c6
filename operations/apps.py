from django.apps import AppConfig


class OperationsConfig(AppConfig):
    name = "operations"
    verbose_name = "Operations"

    def ready(self) -> None:
        # Handlers register on import; web and worker processes both need the registry full.
        from operations.export import services  # noqa: F401
