"""The multiprocess directory: where a served node's processes write their metrics.

prometheus_client chooses, when it is first imported, between keeping values in memory
and writing them to files in ``PROMETHEUS_MULTIPROC_DIR`` (one per process and metric
type), which ``/metrics`` then adds up. The standalone node's settings set the variable
(``data/metrics`` with a database server; none on the embedded node, which is one
process). Counters of processes that ended stay in the sum, as they must (a worker
recycled mid-run must not take its counts with it); the files of processes no longer
running are removed when a service starts (gunicorn's master, a Celery worker's main
process), not the whole directory: gunicorn and Celery on one machine share it, and one
starting must not wipe the counts of the other while it runs.
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

from celery.signals import worker_process_shutdown, worker_ready
from prometheus_client import multiprocess

logger = logging.getLogger("fedsx.metrics")


def directory() -> str | None:
    """The multiprocess directory in use, or None (values kept in memory)."""
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    return path if path and os.path.isdir(path) else None


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: running
    return True


def remove_dead_files(path: str | None = None) -> int:
    """Remove the files of processes that are no longer running; returns how many."""
    path = path or directory()
    if path is None:
        return 0
    removed = 0
    for file in Path(path).glob("*.db"):
        pid = file.stem.rsplit("_", 1)[-1]
        if pid.isdigit() and not _running(int(pid)):
            with contextlib.suppress(FileNotFoundError):
                file.unlink()
                removed += 1
    if removed:
        logger.info("removed %d metrics files of ended processes from %s", removed, path)
    return removed


def mark_process_dead(pid: int) -> None:
    """A worker process ended: drop its live gauges (its counters stay in the sum)."""
    if directory() is not None:
        multiprocess.mark_process_dead(pid)


# Once the worker is up (after Django and this module are loaded in its main process).
@worker_ready.connect(dispatch_uid="fedsx.metrics.worker_ready")
def _worker_starts(**kwargs) -> None:
    remove_dead_files()


@worker_process_shutdown.connect(dispatch_uid="fedsx.metrics.worker_process_shutdown")
def _worker_process_ends(pid: int | None = None, **kwargs) -> None:
    mark_process_dead(pid or os.getpid())
