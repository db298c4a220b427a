from django.apps import AppConfig


class FedsxConfig(AppConfig):
    name = "fedsx"
    verbose_name = "Federation"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Connect the signals that keep the per-process caches honest.
        from . import blocks, delivery, inbox  # noqa: F401

        delivery.register()  # deliveries are a job kind (fedsx/jobs.py)
