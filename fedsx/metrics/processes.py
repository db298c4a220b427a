"""The multiprocess directory: where a served node's processes write their metrics.

prometheus_client chooses, when it is first imported, between keeping values in memory
and writing them to files in ``PROMETHEUS_MULTIPROC_DIR`` (one per process and metric
type), which ``/metrics`` then adds up. The standalone node's settings set the variable
(``data/metrics`` with a database server; none on the embedded node, which is one
process).

Counters and histograms of processes that ended must stay in the sum: a sum that drops
reads to Prometheus as a counter reset, and ``rate()`` then counts the whole remaining
total again (a spike that trips alerts). So when a service starts (gunicorn's master, a
Celery worker's main process) the files of processes no longer running are *archived*:
added into one ``counter_archive.db`` / ``histogram_archive.db`` and then removed, under a
lock, so the files do not pile up with every recycled worker or command run and the sum
never moves. Gauges of ended processes are dropped (they describe a process that is gone).
The whole directory is never wiped: gunicorn and Celery on one machine share it, and one
starting must not take the other's counts while it runs. Processes are told apart by pid,
so the directory must be shared only by processes that see one another's pids (one
machine or one container, not several).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from pathlib import Path

from celery.signals import worker_process_shutdown, worker_ready
from prometheus_client import multiprocess
from prometheus_client.mmap_dict import MmapedDict

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


ARCHIVED_TYPES = ("counter", "histogram", "summary")
ARCHIVE = "archive"


def archive_dead_files(path: str | None = None) -> int:
    """Fold the files of processes no longer running into the archive; returns how many.

    Each is renamed out of the collector's sight first, then added to the archive, then
    removed: a crash in between loses that one process's counts rather than counting them
    twice.
    """
    path = path or directory()
    if path is None:
        return 0
    folded = 0
    with _archive_lock(path):
        for file in sorted(Path(path).glob("*.db")):
            kind, pid = file.name.split("_", 1)[0], file.stem.rsplit("_", 1)[-1]
            if not pid.isdigit() or _running(int(pid)):
                continue
            taken = file.with_suffix(".archiving")
            try:
                file.rename(taken)
            except FileNotFoundError:
                continue
            if kind in ARCHIVED_TYPES:
                _add_to_archive(taken, Path(path) / f"{kind}_{ARCHIVE}.db")
            taken.unlink()
            folded += 1
    if folded:
        logger.info("archived the metrics files of %d ended processes in %s", folded, path)
    return folded


def _add_to_archive(source: Path, archive_path: Path) -> None:
    if source.stat().st_size == 0:
        return  # made but never written to
    archive = MmapedDict(str(archive_path))
    try:
        for key, value, timestamp, _ in MmapedDict.read_all_values_from_file(str(source)):
            total, _ = archive.read_value(key)
            archive.write_value(key, total + value, timestamp)
    finally:
        archive.close()


@contextlib.contextmanager
def _archive_lock(path: str):
    """One archiver at a time per directory (gunicorn and Celery may start together)."""
    with open(os.path.join(path, ".archive.lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def mark_process_dead(pid: int) -> None:
    """A worker process ended: drop its live gauges (its counters stay in the sum)."""
    if directory() is not None:
        multiprocess.mark_process_dead(pid)


# Once the worker is up (after Django and this module are loaded in its main process).
@worker_ready.connect(dispatch_uid="fedsx.metrics.worker_ready")
def _worker_starts(**kwargs) -> None:
    archive_dead_files()


@worker_process_shutdown.connect(dispatch_uid="fedsx.metrics.worker_process_shutdown")
def _worker_process_ends(pid: int | None = None, **kwargs) -> None:
    mark_process_dead(pid or os.getpid())
