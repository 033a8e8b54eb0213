from django.apps import AppConfig


class WebConfig(AppConfig):
    """The web layer: URL confs, the overview, the operator console, template tags, the demo.
    It may import every app; no app imports it. It has no models."""

    name = "web"
    label = "web"
    verbose_name = "Web layer"
