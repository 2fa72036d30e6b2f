from django.apps import AppConfig


class OpsConfig(AppConfig):
    name = "fapiao.ops"
    label = "ops"
