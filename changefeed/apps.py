from django.apps import AppConfig


class ChangefeedConfig(AppConfig):
    name = "changefeed"
    verbose_name = "Change feed"
