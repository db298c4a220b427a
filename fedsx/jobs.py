"""One background-work layer: after the commit, hand ids to the workers, or run them in
process on the embedded node; and hand out again whatever a periodic sweep finds overdue.

Every kind of job (trigger application, deliveries, flow wake-ups) is a ``JobKind``: a
Celery task that takes ids, the function that does the work in process, and the query
that finds what is overdue. ``after_commit(kind, ids)`` is all an app calls:

* All ids of one kind registered in one transaction share one ``on_commit`` callback, so a
  rolled-back transaction hands out nothing and a fan-out is one task, not one per row.
* With a broker, the ids go to this process's ``Courier``, a background thread that
  publishes them, as many ids per task as piled up while it published the last batch and
  at most once per ``PUBLISH_INTERVAL``: a request pays for appending to an in-memory queue
  (about a microsecond), not a broker round trip. Measured here, one ``.delay()`` per
  request nearly halved a minimal inbox; without the interval the courier kept up with one
  task per entry and took a third of the inbox's throughput (bench/inbox.py --dispatch).
* With no broker (eager Celery: the embedded node, or a host that configured none) the work
  runs in process after the commit: inline for kinds that must be done when the request
  ends (triggers), on a background thread for kinds that must never hold a request
  (deliveries). A *ticker* thread stands in for celery beat and runs each kind's sweep at
  its interval, so retries and timers fire on a quiet node too. Threads and ticker run only
  in a serving process (``serving()``); a management command does its work inline before
  it exits (``manage.py follow`` has sent its Follow when it returns).

The same ticker also runs the process's own *chores* (``every(seconds, fn)``), with a
broker or without: housekeeping of this process's memory, such as flushing the inbox's
counts (fedsx/tallies.py). Every serving process has one ticker thread, whatever it runs.

Nothing is lost when the broker is down or a process dies before its courier published:
the rows are still due, and the next sweep hands them out. Every kind's work is idempotent
(claims, unique keys), so handing something out twice costs a little work, nothing more.
"""

from __future__ import annotations

import atexit
import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from django.db import connections, transaction

from .conf import fedsx_settings

logger = logging.getLogger("fedsx.jobs")

PUBLISH_INTERVAL = 0.010  # seconds: at most 100 publishes a second from one web process
_PENDING_ATTR = "_fedsx_pending_jobs"


@dataclass(frozen=True)
class JobKind:
    name: str
    task_name: str  # a Celery task registered under this name, called as task(*ids)
    run: Callable[[list[int]], Any]  # do the work for these committed ids, in process
    overdue: Callable[[], list[int]]  # ids the periodic sweep must hand out now
    sweep_interval: float | Callable[[], float] = 60.0  # seconds, on the embedded node
    in_thread: bool = False  # in process: on a background thread, never in the request
    max_ids_per_task: int = 500

    def interval(self) -> float:
        value = self.sweep_interval
        return float(value() if callable(value) else value)


_kinds: dict[str, JobKind] = {}


def register(kind: JobKind) -> None:
    """Make a kind known (apps call this in ``ready()``); registering again replaces it."""
    _kinds[kind.name] = kind


def kind_of(name: str) -> JobKind:
    try:
        return _kinds[name]
    except KeyError:
        raise LookupError(f"no job kind {name!r} is registered") from None


# ── after the commit ──────────────────────────────────────────────────────────────────


class CommitBatch:
    """The ids of one kind created in one transaction, handed out together on commit."""

    def __init__(self, kind: str, using: str):
        self.kind, self.using, self.ids = kind, using, []

    def is_pending(self) -> bool:
        """Is this batch's on_commit callback still registered (not run, not rolled back)?"""
        connection = connections[self.using]
        return connection.in_atomic_block and any(
            callback == self.send for _, callback, _ in connection.run_on_commit
        )

    def send(self) -> None:
        batches = getattr(connections[self.using], _PENDING_ATTR, {})
        if batches.get(self.kind) is self:
            del batches[self.kind]
        dispatch(self.kind, self.ids)


def after_commit(kind: str, ids: list[int], using: str = "default") -> None:
    """Hand these ids out once the current transaction commits (at once outside one)."""
    if not ids:
        return
    connection = connections[using]
    batches = getattr(connection, _PENDING_ATTR, None)
    if batches is None:
        batches = {}
        setattr(connection, _PENDING_ATTR, batches)
    batch = batches.get(kind)
    if batch is None or not batch.is_pending():
        batch = batches[kind] = CommitBatch(kind, using)
        batch.ids.extend(ids)
        transaction.on_commit(batch.send, using=using)
        return
    batch.ids.extend(ids)


def dispatch(kind: str, ids: list[int]) -> None:
    """Hand out these committed ids now: in process (no broker) or through the courier."""
    if not ids:
        return
    if runs_in_process():
        run_in_process(kind_of(kind), ids)
    else:
        courier().put(kind, ids)


def runs_in_process() -> bool:
    """No broker to hand work to: Celery runs tasks eagerly (the embedded node), or the host
    project configured no broker URL at all, where Celery would silently publish to
    amqp://localhost and, most likely, no worker would ever run the work. (A host that
    does run its workers on that default broker names it: ``amqp://localhost``.)"""
    from celery import current_app

    conf = current_app.conf
    return bool(conf.task_always_eager) or not (conf.broker_url or conf.broker_write_url)


def threads_allowed() -> bool:
    """May in-process work use background threads? Only in a process that serves (a short
    command would exit under them: its work runs inline instead, before it exits)."""
    return _serving and bool(fedsx_settings.JOBS_IN_PROCESS_THREADS)


_serving = False


def serving() -> None:
    """Mark this process as long-lived (it serves requests): in-process work that must not
    hold a request goes to background threads, the ticker runs the chores, and with no
    broker it sweeps in celery beat's place too, so retries fire on a quiet node. The
    node's WSGI module calls it at start; in a host project the first request does
    (``request_started``)."""
    global _serving
    _serving = True
    if threads_allowed():
        ticker()  # chores always; sweeps too when there is no broker


def on_request_started(sender: Any = None, **kwargs: Any) -> None:
    if not _serving:
        serving()


# ── in process (the embedded node) ────────────────────────────────────────────────────


def run_in_process(kind: JobKind, ids: list[int]) -> None:
    """Run the work after the commit: inline, or on this process's background thread for
    kinds that must not hold the request. A failure is logged; the sweep retries."""
    if kind.in_thread and threads_allowed():
        _background().submit(_run_logged, kind, ids, True)
    else:
        _run_logged(kind, ids, False)
    if threads_allowed():
        ticker()


def _run_logged(kind: JobKind, ids: list[int], own_thread: bool) -> None:
    try:
        for start in range(0, len(ids), kind.max_ids_per_task):
            kind.run(ids[start : start + kind.max_ids_per_task])
    except Exception:
        logger.exception("%s %s failed in process; the sweep will retry", kind.name, ids[:5])
    finally:
        if own_thread:
            connections.close_all()  # this thread's own


_executor: ThreadPoolExecutor | None = None
_executor_pid = 0
_executor_lock = threading.Lock()


def _background() -> ThreadPoolExecutor:
    global _executor, _executor_pid
    with _executor_lock:
        if _executor is None or _executor_pid != os.getpid():
            # Two threads: one batch of slow deliveries does not stop the next one from
            # starting (each batch sends from a pool of its own).
            _executor = ThreadPoolExecutor(2, thread_name_prefix="fedsx-jobs")
            _executor_pid = os.getpid()
        return _executor


@dataclass(frozen=True)
class Chore:
    """Housekeeping of one process, run by its ticker every ``interval`` seconds."""

    name: str
    run: Callable[[], Any]
    interval: float


_chores: dict[str, Chore] = {}


def every(seconds: float, fn: Callable[[], Any], name: str) -> None:
    """Run ``fn`` every ``seconds`` on the ticker of each serving process, with a broker or
    without (apps call this in ``ready()``; registering a name again replaces it). The
    ticker closes its database connections after each tick: no idle one per process."""
    _chores[name] = Chore(name, fn, float(seconds))


class Ticker:
    """Each serving process's one background clock: the chores at their intervals and,
    with no broker (celery beat's stand-in), every kind's sweep at its interval."""

    TICK = 0.5  # seconds between looks at the clock

    def __init__(self, *, start: bool = True) -> None:
        self.pid = os.getpid()
        self.stopped = threading.Event()
        self.swept_at: dict[str, float] = {}
        self.done_at: dict[str, float] = {}  # chores
        self.thread = threading.Thread(target=self._run, name="fedsx-ticker", daemon=True)
        if start:
            self.thread.start()

    def _run(self) -> None:
        while not self.stopped.wait(self.TICK):
            try:
                self.tick()
            finally:
                connections.close_all()

    def tick(self) -> None:
        now = time.monotonic()
        for chore in list(_chores.values()):
            if now - self.done_at.get(chore.name, float("-inf")) < chore.interval:
                continue
            self.done_at[chore.name] = now
            try:
                chore.run()
            except Exception:
                logger.exception("chore %s failed", chore.name)
        if not runs_in_process():
            return  # the broker's workers and celery beat sweep
        for kind in list(_kinds.values()):
            if now - self.swept_at.get(kind.name, float("-inf")) < kind.interval():
                continue
            self.swept_at[kind.name] = now
            try:
                sweep(kind.name)
            except Exception:
                logger.exception("sweeping %s in process failed", kind.name)


_ticker: Ticker | None = None
_ticker_lock = threading.Lock()


def ticker() -> Ticker:
    """This process's ticker, started on first use (so after a fork, in the child)."""
    global _ticker
    if _ticker is None or _ticker.pid != os.getpid() or _ticker.stopped.is_set():
        with _ticker_lock:
            if _ticker is None or _ticker.pid != os.getpid() or _ticker.stopped.is_set():
                _ticker = Ticker()
    return _ticker


def stop_in_process() -> None:
    """Stop the ticker and wait for in-process work (tests; a clean shutdown)."""
    global _ticker, _executor
    with _ticker_lock:
        if _ticker is not None:
            _ticker.stopped.set()
            if _ticker.thread.is_alive() and _ticker.thread is not threading.current_thread():
                _ticker.thread.join(timeout=10)  # its tick done, its connections closed
            _ticker = None
    with _executor_lock:
        if _executor is not None:
            _executor.shutdown(wait=True)
            _executor = None


# ── the sweep ──────────────────────────────────────────────────────────────────────────


def sweep(kind: str) -> tuple[int, bool]:
    """Hand out what is overdue; returns (how many, whether the broker took them all)."""
    return hand_out(kind, kind_of(kind).overdue())


def hand_out(kind: str, ids: list[int]) -> tuple[int, bool]:
    """Hand out these committed ids from a sweep: run now in process (no broker), or publish
    them at once, not through the courier (the caller wants to know if the broker took
    them)."""
    job = kind_of(kind)
    if not ids:
        return 0, True
    if runs_in_process():
        _run_logged(job, ids, False)  # the sweep's own thread: beat's or the ticker's
        return len(ids), True
    return len(ids), publish(job, ids)


# ── with a broker ──────────────────────────────────────────────────────────────────────


def publish(kind: JobKind, ids: list[int]) -> bool:
    """One task per ``max_ids_per_task`` ids; False if the broker failed."""
    from celery import current_app

    try:
        for start in range(0, len(ids), kind.max_ids_per_task):
            chunk = ids[start : start + kind.max_ids_per_task]
            current_app.send_task(
                kind.task_name,
                args=chunk,
                retry=False,
                # Spare the safe repr Celery would otherwise make of every id list, in the
                # web process, for each message.
                argsrepr=f"<{len(chunk)} {kind.name} from {chunk[0]}>",
                kwargsrepr="{}",
            )
    except Exception as exc:  # any broker trouble: the sweep has these ids
        logger.warning(
            "could not enqueue %d %s (%s); the sweep will", len(ids), kind.name, type(exc).__name__
        )
        return False
    return True


class Courier:
    """One background thread per process that publishes committed ids in batches."""

    def __init__(self, interval: float = PUBLISH_INTERVAL) -> None:
        self.queue: queue.SimpleQueue[tuple[str, list[int]]] = queue.SimpleQueue()
        self.pid = os.getpid()
        self.interval = interval
        self.published_at = float("-inf")
        # Batches put and not yet published, those in the thread's hands included: the exit
        # flush waits for them, or a short-lived process (a management command) would exit
        # while its courier is publishing and lose the batch.
        self.outstanding = 0
        self.settled = threading.Condition()
        self.thread = threading.Thread(target=self._run, name="fedsx-courier")
        self.thread.daemon = True  # never holds a process open; atexit drains what is left
        self.thread.start()

    def put(self, kind: str, ids: list[int]) -> None:
        with self.settled:
            self.outstanding += 1
        self.queue.put((kind, ids))

    def _published(self, count: int) -> None:
        with self.settled:
            self.outstanding -= count
            self.settled.notify_all()

    def _run(self) -> None:
        while True:
            # Wait out the interval first, with nothing in hand: ids arriving meanwhile
            # stay queued (where an exiting process's flush finds them) and join one task.
            time.sleep(max(0.0, self.published_at + self.interval - time.monotonic()))
            got = [self.queue.get()]
            batches = self._drain(got)
            self.published_at = time.monotonic()
            try:
                for kind, ids in batches.items():
                    publish(kind_of(kind), ids)
            finally:
                self._published(len(got))

    def _drain(self, got: list[tuple[str, list[int]]]) -> dict[str, list[int]]:
        """What is in hand plus whatever else is queued already (no waiting), by kind."""
        while True:
            try:
                got.append(self.queue.get_nowait())
            except queue.Empty:
                break
        batches: dict[str, list[int]] = {}
        for kind, ids in got:
            batches.setdefault(kind, []).extend(ids)
        return batches

    def flush(self, wait: float = 10.0) -> None:
        """Publish what is still queued, from the calling thread, and wait (at most ``wait``
        seconds) for what the courier thread has in hand (at exit)."""
        got: list[tuple[str, list[int]]] = []
        for kind, ids in self._drain(got).items():
            publish(kind_of(kind), ids)
        self._published(len(got))
        with self.settled:
            self.settled.wait_for(lambda: self.outstanding <= 0, timeout=wait)


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
