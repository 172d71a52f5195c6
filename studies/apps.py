from django.apps import AppConfig


class StudiesConfig(AppConfig):
    name = "studies"
    verbose_name = "DICOM studies"

    def ready(self) -> None:
        from pydicom import config

        # Values are validated by our own VR rules at STOW (studies/dicom/vr.py), which decide
        # between rejecting (v1) and dropping with a warning (v2); pydicom's warnings would
        # only repeat that in the log for every odd file.
        config.settings.reading_validation_mode = config.IGNORE

        # Registers the bulk update handler with the operations runner, in web and worker processes.
        from studies.services import update  # noqa: F401
