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
