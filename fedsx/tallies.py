"""Inbox requests counted per hour and outcome, kept in the database in batches.

Refused requests are stored nowhere (nothing unverified is), so the dashboard's inbox
figures are counts: ``inbox_tally.add(outcome)`` adds one to this process's tally (a dict
under a lock, about a microsecond), and a flush adds the tally to the ``InboxTally`` rows
with one upsert per (hour, outcome). In a serving process (``jobs.threads_allowed()``) the
flush is a chore of the jobs layer's ticker (``jobs.every``), every ``FLUSH_SECONDS``, so no
request ever waits on it; in any other process the request that finds the interval over
flushes inline. What is left is
flushed at exit, and the dashboard flushes its own process's tally before it reads. A
process killed outright loses at most its last few seconds of counts: these are figures to
watch, not records.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections import Counter
from datetime import UTC, datetime

from django.db import connections

from . import jobs
from .models import InboxTally

logger = logging.getLogger("fedsx.tallies")

FLUSH_SECONDS = 5.0
CHORE = "inbox-tally"  # its name among the jobs layer's chores
HOUR = 3600


class Tally:
    """This process's counts since the last flush, by (hour number, outcome)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counts: Counter[tuple[int, str]] = Counter()
        self.flushed_at = time.monotonic()
        self.pid = os.getpid()

    def add(self, outcome: str) -> None:
        if self.pid != os.getpid():
            self._forked()
        key = (int(time.time() // HOUR), outcome[:64])
        with self.lock:
            self.counts[key] += 1
        if time.monotonic() - self.flushed_at < FLUSH_SECONDS:
            return
        if jobs.threads_allowed():
            jobs.ticker()  # its chore flushes (started here in a child forked after serving())
        else:
            self.flush()

    def _forked(self) -> None:
        """A child of a process that counted: the parent's counts are the parent's."""
        self.lock = threading.Lock()
        self.counts = Counter()
        self.pid = os.getpid()

    def flush(self) -> None:
        """Add the counts to the database; on failure keep them for the next flush."""
        if self.pid != os.getpid():
            self._forked()
        with self.lock:
            counts, self.counts = self.counts, Counter()
            self.flushed_at = time.monotonic()
        if not counts:
            return
        try:
            save(counts)
        except Exception as exc:  # a database away for a moment must not lose the counts
            logger.warning("could not save inbox tallies (%s); kept", type(exc).__name__)
            with self.lock:
                self.counts.update(counts)


def save(counts: Counter[tuple[int, str]], using: str = "default") -> None:
    """One upsert adding each count to its (hour, outcome) row."""
    connection = connections[using]
    table = connection.ops.quote_name(InboxTally._meta.db_table)
    rows = [
        (
            connection.ops.adapt_datetimefield_value(datetime.fromtimestamp(hour * HOUR, UTC)),
            outcome,
            count,
        )
        for (hour, outcome), count in sorted(counts.items())  # one lock order for all
    ]
    sql = (
        f"INSERT INTO {table} (hour, outcome, count) VALUES (%s, %s, %s) "  # noqa: S608
        f"ON CONFLICT (hour, outcome) DO UPDATE SET count = {table}.count + EXCLUDED.count"
    )
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)


inbox_tally = Tally()


def register() -> None:
    """The flush as a chore of every serving process's ticker (apps call it in ``ready()``)."""
    jobs.every(FLUSH_SECONDS, inbox_tally.flush, name=CHORE)


@atexit.register
def _flush_at_exit() -> None:
    if inbox_tally.pid == os.getpid():
        try:
            inbox_tally.flush()
        except Exception:  # the database may be gone at exit; nothing to do then
            logger.debug("final tally flush failed", exc_info=True)
