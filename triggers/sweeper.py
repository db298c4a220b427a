"""The sweeper: hand out again every entry whose triggers were not applied in time.

An entry can miss its task when it was committed while the broker was down, when the web
process died before its courier published, or when a worker was killed mid-batch and the
message is not redelivered. Every entry records when its triggers were applied; those still
unapplied after ``SWEEP_AFTER_SECONDS`` are sent again (celery beat runs ``fedsx.sweep``
for the ``triggers`` kind; the embedded node's ticker does the same in process). Applying
is idempotent (the unique Firing key), so sweeping an entry that is merely slow costs a
little work, nothing more.
"""

from __future__ import annotations

from fedsx import jobs

from .enqueue import TRIGGERS, overdue


def sweep(older_than_seconds: float | None = None) -> tuple[int, bool]:
    """Re-enqueue pending entries; returns (how many, whether the broker took them all)."""
    return jobs.hand_out(TRIGGERS, overdue(older_than_seconds))
