from django.apps import AppConfig


class StudiesConfig(AppConfig):
    name = "studies"
    verbose_name = "DICOM studies"

    def ready(self) -> None:
        # Registers the bulk update handler with the operations runner, in web and worker processes.
        from studies.services import update  # noqa: F401
