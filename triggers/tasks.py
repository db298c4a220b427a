"""Celery tasks of the triggers app (found by ``app.autodiscover_tasks()``).

It is acks-late (a message is removed from the broker only after the task finished, so
a killed worker's batch is delivered again) and idempotent by construction.
"""

from __future__ import annotations

from celery import shared_task
from django.db import DatabaseError, InterfaceError, close_old_connections

from . import pipeline

# After this many failed attempts a batch is applied entry by entry, each in its own
# transaction: a database error that is not passing (an entry the database refuses) then
# holds back only that entry, which the sweeper retries, and not the rest of its batch.
ISOLATE_AFTER_RETRIES = 3


@shared_task(
    name="triggers.apply_triggers",
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    autoretry_for=(DatabaseError, InterfaceError),
    retry_backoff=1,
    retry_backoff_max=60,
    retry_jitter=True,
    max_retries=10,  # after that the sweeper picks the entries up again
)
def apply_triggers(self, *entry_ids: int) -> int:
    """Apply triggers to each of these inbox entries not applied yet; returns how many ran."""
    # With CELERY_DB_REUSE_MAX set, Celery keeps the connection between tasks (opening one
    # per task cost ~60 ms here); drop it if it broke or aged out, as Django does per request.
    close_old_connections()
    if self.request.retries >= ISOLATE_AFTER_RETRIES:
        return pipeline.apply_entries_isolated(entry_ids)
    return pipeline.apply_entries(entry_ids)
