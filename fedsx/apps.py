from django.apps import AppConfig


class FedsxConfig(AppConfig):
    name = "fedsx"
    verbose_name = "Federation"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Connect the signals that keep the per-process caches honest.
        from django.core.signals import request_started

        from . import blocks, delivery, inbox, jobs, tallies  # noqa: F401

        delivery.register()  # deliveries are a job kind (fedsx/jobs.py)
        tallies.register()  # the inbox counts' flush is a chore of the same ticker
        request_started.connect(jobs.on_request_started, dispatch_uid="fedsx.jobs.serving")
