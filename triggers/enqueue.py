"""Trigger application as a job kind of ``fedsx.jobs``.

The kernel announces each append's new entries (``fedsx.signals.inbox_appended``);
``entries_appended`` hands their ids to the jobs layer, which applies them after the
commit: in process on the embedded node (inline, so a request's triggers have run when it
ends), or as ``triggers.apply_triggers`` tasks through the courier. An entry whose task
never ran (a broker down, a process that died before its courier published, a worker
killed mid-batch) is still unapplied after ``SWEEP_AFTER_SECONDS``; the sweep hands it out
again, and the unique Firing key makes a second run harmless.
"""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from fedsx import jobs
from fedsx.conf import fedsx_settings
from fedsx.models import InboxEntry

TRIGGERS = "triggers"  # the job kind's name
MAX_IDS_PER_TASK = 500


def entries_appended(sender, entries: list[InboxEntry], using: str = "default", **kwargs) -> None:
    """inbox_appended receiver: apply triggers to these entries once the append commits."""
    if fedsx_settings.DISPATCH_TRIGGERS:
        jobs.after_commit(TRIGGERS, [entry.pk for entry in entries], using)


def pending_entries(older_than_seconds: float | None = None):
    """Unapplied entries created at least ``older_than_seconds`` ago (default: the setting)."""
    if older_than_seconds is None:
        older_than_seconds = fedsx_settings.SWEEP_AFTER_SECONDS
    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    return InboxEntry.objects.filter(triggers_applied_at__isnull=True, created_at__lte=cutoff)


def overdue(older_than_seconds: float | None = None) -> list[int]:
    return list(pending_entries(older_than_seconds).order_by("pk").values_list("pk", flat=True))


def _apply(entry_ids: list[int]) -> object:
    from .pipeline import apply_entries  # the pipeline imports the flows engine: load late

    return apply_entries(entry_ids)


def register() -> None:
    jobs.register(
        jobs.JobKind(
            name=TRIGGERS,
            task_name="triggers.apply_triggers",
            run=_apply,
            overdue=overdue,
            sweep_interval=lambda: fedsx_settings.SWEEP_AFTER_SECONDS,
            max_ids_per_task=MAX_IDS_PER_TASK,
        )
    )
