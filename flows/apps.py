from django.apps import AppConfig
from django.utils.module_loading import autodiscover_modules


class FlowsConfig(AppConfig):
    name = "flows"
    verbose_name = "Flows"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Register every installed app's flows.py, as the admin does with admin.py.
        autodiscover_modules("flows")
        from . import waits

        waits.register()  # look-backs and timers are a job kind (fedsx/jobs.py)
