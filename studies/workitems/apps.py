from django.apps import AppConfig


class WorkitemsConfig(AppConfig):
    name = "studies.workitems"
    label = "workitems"
    verbose_name = "Worklist (UPS-RS workitems)"
