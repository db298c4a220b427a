from django.apps import AppConfig


class FedsxConfig(AppConfig):
    name = "fedsx"
    verbose_name = "Federation"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import blocks  # noqa: F401  (connects the block-list invalidation signals)
