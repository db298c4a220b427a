"""Handing committed inbox entries to the workers, without slowing the inbox down.

The kernel's append creates InboxEntry rows in a transaction; ``post_save`` calls
``entry_created``, which only remembers the entry id. All entries of one transaction share
one ``on_commit`` callback, so a rolled-back append never triggers anything and a delivery
to many recipients is one task, not one per entry.

After the commit, with no broker (embedded mode, Celery eager) the entries are applied in
process at once, and (there being no celery beat) the sweeper runs in process too, at most
once per ``SWEEP_AFTER_SECONDS``.

With a broker, the ids go to this process's ``Courier``: a background thread that
publishes them as ``apply_triggers`` tasks, as many ids per task as piled up while it was
publishing the last one, and it publishes at most once per ``PUBLISH_INTERVAL``. A request
thus pays for appending to an in-memory queue (about a microsecond), not for a broker round
trip: measured here, one ``.delay()`` per request nearly halved a minimal inbox. The
interval matters under load: a publish costs about half a millisecond of CPU in the web
process, little enough that without it the courier kept up with one task per entry and
took a third of the inbox's throughput (bench/inbox.py --dispatch). When entries arrive
further apart than the interval, each still goes out at once.

If the broker is down, or the process dies before the courier sent its batch, the entries
stay unapplied and the sweeper re-enqueues them; the unique Firing key makes any second
run harmless.
"""

from __future__ import annotations

import atexit
import logging
import os
import queue
import threading
import time

from django.db import connections, transaction

from fedsx.conf import fedsx_settings

logger = logging.getLogger(__name__)

MAX_IDS_PER_TASK = 500
PUBLISH_INTERVAL = 0.010  # seconds: at most 100 publishes a second from one web process
_PENDING_ATTR = "_fedsx_pending_trigger_batch"


def entry_created(sender, instance, created: bool, raw: bool = False, using=None, **kwargs):
    """post_save receiver for InboxEntry: schedule trigger application after the commit."""
    if created and not raw and fedsx_settings.DISPATCH_TRIGGERS:
        after_commit(instance.pk, using or "default")


class CommitBatch:
    """The entry ids created in one transaction, sent together once it commits."""

    def __init__(self, entry_id: int, using: str):
        self.ids = [entry_id]
        self.using = using

    def is_pending(self) -> bool:
        """Is this batch's on_commit callback still registered (not run, not rolled back)?"""
        connection = connections[self.using]
        return connection.in_atomic_block and any(
            callback == self.send for _, callback, _ in connection.run_on_commit
        )

    def send(self) -> None:
        connection = connections[self.using]
        if getattr(connection, _PENDING_ATTR, None) is self:
            setattr(connection, _PENDING_ATTR, None)
        dispatch(self.ids)


def after_commit(entry_id: int, using: str = "default") -> None:
    connection = connections[using]
    batch = getattr(connection, _PENDING_ATTR, None)
    if batch is not None and batch.is_pending():
        batch.ids.append(entry_id)
        return
    batch = CommitBatch(entry_id, using)
    setattr(connection, _PENDING_ATTR, batch)
    # Outside a transaction this runs at once: the row is committed already.
    transaction.on_commit(batch.send, using=using)


def dispatch(entry_ids: list[int]) -> None:
    """Apply these committed entries now (no broker) or via the courier (broker)."""
    if runs_in_process():
        run_in_process(entry_ids)
    else:
        courier().put(entry_ids)


def runs_in_process() -> bool:
    """No broker to hand entries to: Celery runs tasks eagerly (the embedded node), or the
    host project configured no broker URL at all, where Celery would silently publish to
    amqp://localhost and, most likely, no worker would ever apply the entries. (A host that
    does run its workers on that default broker names it: ``amqp://localhost``.)"""
    from .tasks import apply_triggers

    conf = apply_triggers.app.conf
    return bool(conf.task_always_eager) or not (conf.broker_url or conf.broker_write_url)


def run_in_process(entry_ids: list[int]) -> None:
    """Embedded mode: apply now, after the commit; a failure is logged, the sweeper retries."""
    from .pipeline import apply_entries

    try:
        apply_entries(entry_ids)
    except Exception:
        logger.exception(
            "applying triggers to entries %s failed; the sweeper will retry", entry_ids
        )
        schedule_retry_sweep()
    sweep_in_process()


_swept_at = float("-inf")
_sweep_lock = threading.Lock()


def sweep_in_process() -> None:
    """Embedded mode has no celery beat: sweep here, at most once per SWEEP_AFTER_SECONDS.

    Without it an entry whose in-process run failed would never be applied (invariant 4).
    The clock is checked first, so all but one call a minute cost a subtraction.
    """
    if time.monotonic() - _swept_at < fedsx_settings.SWEEP_AFTER_SECONDS:
        return
    _sweep_now()


def _sweep_now() -> None:
    global _swept_at
    if not _sweep_lock.acquire(blocking=False):
        return  # another thread is sweeping (or this is the sweep's own run_in_process)
    try:
        _swept_at = time.monotonic()
        from .sweeper import sweep

        sweep()
    except Exception:
        logger.exception("sweeping unapplied inbox entries in process failed")
    finally:
        _sweep_lock.release()


_retry_timer: threading.Timer | None = None
_retry_lock = threading.Lock()


def schedule_retry_sweep() -> None:
    """After an in-process failure, sweep again once the failed entries are due, whether or
    not another delivery comes to trigger the sweep (a quiet node might wait for hours)."""
    global _retry_timer
    with _retry_lock:
        if _retry_timer is not None:
            return  # one is due already; it sweeps these entries too
        _retry_timer = threading.Timer(fedsx_settings.SWEEP_AFTER_SECONDS + 1, _sweep_when_due)
        _retry_timer.daemon = True
        _retry_timer.start()


def cancel_retry_sweep() -> None:
    global _retry_timer
    with _retry_lock:
        if _retry_timer is not None:
            _retry_timer.cancel()
        _retry_timer = None


def _sweep_when_due() -> None:
    global _retry_timer
    with _retry_lock:
        _retry_timer = None  # a failure during this sweep schedules the next one
    try:
        _sweep_now()
    finally:
        connections.close_all()  # this thread's own


def publish(entry_ids: list[int]) -> bool:
    """Send one apply_triggers task per MAX_IDS_PER_TASK ids; False if the broker failed."""
    from .tasks import apply_triggers

    try:
        for start in range(0, len(entry_ids), MAX_IDS_PER_TASK):
            ids = entry_ids[start : start + MAX_IDS_PER_TASK]
            apply_triggers.apply_async(
                args=ids,
                retry=False,
                # Spare the safe repr Celery would otherwise make of every argument list,
                # in the web process, for each message.
                argsrepr=f"<{len(ids)} inbox entries from {ids[0]}>",
                kwargsrepr="{}",
            )
    except Exception as exc:  # any broker trouble: the sweeper has these entries
        logger.warning(
            "could not enqueue %d inbox entries (%s); the sweeper will",
            len(entry_ids),
            type(exc).__name__,
        )
        return False
    return True


class Courier:
    """One background thread per process that publishes committed entry ids in batches."""

    def __init__(self, interval: float = PUBLISH_INTERVAL) -> None:
        self.queue: queue.SimpleQueue[list[int]] = queue.SimpleQueue()
        self.pid = os.getpid()
        self.interval = interval
        self.published_at = float("-inf")
        self.thread = threading.Thread(target=self._run, name="fedsx-triggers-courier")
        self.thread.daemon = True  # never holds a process open; atexit drains what is left
        self.thread.start()

    def put(self, entry_ids: list[int]) -> None:
        self.queue.put(entry_ids)

    def _run(self) -> None:
        while True:
            # Wait out the interval first, with nothing in hand: entries arriving meanwhile
            # stay queued (where an exiting process's flush finds them) and join one task.
            time.sleep(max(0.0, self.published_at + self.interval - time.monotonic()))
            ids = list(self.queue.get())
            ids.extend(self._drain(MAX_IDS_PER_TASK - len(ids)))
            self.published_at = time.monotonic()
            publish(ids)

    def _drain(self, room: int) -> list[int]:
        """Whatever else is queued already (no waiting), up to ``room`` ids."""
        more: list[int] = []
        while len(more) < room:
            try:
                more.extend(self.queue.get_nowait())
            except queue.Empty:
                break
        return more

    def flush(self) -> None:
        """Publish what is still queued, from the calling thread (at exit)."""
        ids = self._drain(10**9)
        if ids:
            publish(ids)


_courier: Courier | None = None
_courier_lock = threading.Lock()


def courier() -> Courier:
    """This process's courier, started on first use (so after a fork, in the child)."""
    global _courier
    if _courier is None or _courier.pid != os.getpid():
        with _courier_lock:
            if _courier is None or _courier.pid != os.getpid():
                _courier = Courier()
    return _courier


@atexit.register
def _flush_at_exit() -> None:
    if _courier is not None and _courier.pid == os.getpid():
        _courier.flush()
