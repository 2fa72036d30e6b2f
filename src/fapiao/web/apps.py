from django.apps import AppConfig


class WebConfig(AppConfig):
    name = "fapiao.web"
    label = "web"
