from django.apps import AppConfig
from django.db.models.signals import post_delete, post_save


class TriggersConfig(AppConfig):
    name = "triggers"
    verbose_name = "Triggers"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from fedsx.models import InboxEntry

        from .enqueue import entry_created
        from .models import Trigger, registry_changed

        post_save.connect(entry_created, sender=InboxEntry, dispatch_uid="triggers.entry_created")
        # Every process rebuilds its trigger index when the registry version moved.
        post_save.connect(registry_changed, sender=Trigger, dispatch_uid="triggers.saved")
        post_delete.connect(registry_changed, sender=Trigger, dispatch_uid="triggers.deleted")
