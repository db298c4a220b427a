from django.apps import AppConfig
from django.db.models.signals import post_delete, post_save


class TriggersConfig(AppConfig):
    name = "triggers"
    verbose_name = "Triggers"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from fedsx.signals import inbox_appended

        from . import enqueue
        from .models import Trigger, registry_changed

        enqueue.register()  # trigger application is a job kind (fedsx/jobs.py)
        from fedsx.documents import follow_policies

        from .models import holds_follows

        follow_policies.append(holds_follows)  # manuallyApprovesFollowers
        inbox_appended.connect(enqueue.entries_appended, dispatch_uid="triggers.entries")
        # Every process rebuilds its trigger index when the registry version moved.
        post_save.connect(registry_changed, sender=Trigger, dispatch_uid="triggers.saved")
        post_delete.connect(registry_changed, sender=Trigger, dispatch_uid="triggers.deleted")
