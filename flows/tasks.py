"""Celery tasks of the flows app (found by ``app.autodiscover_tasks()``)."""

from __future__ import annotations

from celery import shared_task
from django.db import close_old_connections

from . import waits


@shared_task(name="flows.wake", acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def wake(*instance_ids: int) -> int:
    """Look back for the answers of fresh receives, and fire the timers that are due.
    Acks late: a worker killed while waking leaves the timer due, and the tick fires it
    once afterwards (the instance's row lock and state make a second run a no-op)."""
    close_old_connections()
    return waits.run(list(instance_ids))
