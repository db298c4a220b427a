"""Celery tasks of the fedsx app (found by ``app.autodiscover_tasks()``).

``fedsx.deliver`` lives beside the work it does (fedsx/delivery.py) and is imported here so
that a worker registers it; ``fedsx.sweep`` is what celery beat runs for every job kind.
"""

from __future__ import annotations

from celery import shared_task
from django.db import close_old_connections

from . import jobs
from .delivery import deliver_task

__all__ = ["deliver_task", "sweep"]


@shared_task(name="fedsx.sweep", ignore_result=True)
def sweep(kind: str) -> int:
    """Hand out what of this job kind is overdue; returns how many ids."""
    close_old_connections()
    count, _ = jobs.sweep(kind)
    return count
