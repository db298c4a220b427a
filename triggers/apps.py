from django.apps import AppConfig
from django.db.models.signals import post_save


class TriggersConfig(AppConfig):
    name = "triggers"
    verbose_name = "Triggers"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from fedsx.models import InboxEntry

        from .enqueue import entry_created

        post_save.connect(entry_created, sender=InboxEntry, dispatch_uid="triggers.entry_created")
