from django.apps import AppConfig


class PlatformConfig(AppConfig):
    name = "fapiao.platform"
    label = "platform"
    verbose_name = "Platform"
