"""The sweeper: re-enqueue every entry whose triggers were not applied in time.

An entry can miss its task when it was committed while the broker was down, when the web
process died before its courier published, or when a worker was killed mid-batch and the
message is not redelivered. Every entry records when its triggers were applied; those still
unapplied after ``SWEEP_AFTER_SECONDS`` are sent again. Applying is idempotent (the unique
Firing key), so sweeping an entry that is merely slow costs a little work, nothing more.
"""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from fedsx.conf import fedsx_settings
from fedsx.models import InboxEntry

from .enqueue import MAX_IDS_PER_TASK, publish, run_in_process, runs_in_process


def pending_entries(older_than_seconds: float | None = None):
    """Unapplied entries created at least ``older_than_seconds`` ago (default: the setting)."""
    if older_than_seconds is None:
        older_than_seconds = fedsx_settings.SWEEP_AFTER_SECONDS
    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    return InboxEntry.objects.filter(triggers_applied_at__isnull=True, created_at__lte=cutoff)


def sweep(older_than_seconds: float | None = None) -> tuple[int, bool]:
    """Re-enqueue pending entries; returns (how many, whether the broker took them all)."""
    ids = list(pending_entries(older_than_seconds).order_by("pk").values_list("pk", flat=True))
    if not ids:
        return 0, True
    if runs_in_process():
        for start in range(0, len(ids), MAX_IDS_PER_TASK):
            run_in_process(ids[start : start + MAX_IDS_PER_TASK])
        return len(ids), True
    return len(ids), publish(ids)
