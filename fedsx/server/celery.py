"""The node's Celery app; a host project points its own Celery app at its broker instead."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fedsx.server.settings")

app = Celery("fedsx")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
