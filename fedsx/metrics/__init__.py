"""The node's metrics: every counter and histogram fedsx keeps, and one recording function
per event, called at the one place the event happens.

Labels are bounded by construction: refusal codes, outcomes, states and registered flow
names, never a URL, an id or a host (the per-host figures are gauges read from the
database at scrape time, top-N only: ``fedsx.metrics.gauges``).

In a served node every process (gunicorn workers, Celery workers) writes its values to the
directory ``PROMETHEUS_MULTIPROC_DIR`` names and ``/metrics`` adds them up
(``fedsx.metrics.processes``); without it they are kept in this process, in ``REGISTRY``.
``FEDSX["METRICS"] = False`` turns every recording function into a no-op.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any, TypeVar

from django.db import transaction
from django.utils import timezone
from prometheus_client import CollectorRegistry, Counter, Histogram

from fedsx.conf import fedsx_settings

# Our own registry: a host project's default registry (and its /metrics, if it has one) is
# left alone, and nothing is collected twice.
REGISTRY = CollectorRegistry(auto_describe=True)


def _counter(name: str, doc: str, labels: tuple[str, ...] = ()) -> Counter:
    return Counter(name, doc, labels, registry=REGISTRY)


def _histogram(name: str, doc: str, buckets: tuple[float, ...]) -> Histogram:
    return Histogram(name, doc, buckets=buckets, registry=REGISTRY)


# ── inbox ──────────────────────────────────────────────────────────────────────────────
INBOX_REQUESTS = _counter(
    "fedsx_inbox_requests",
    "POSTs to the inboxes by outcome: accepted, or the gate's refusal code.",
    ("outcome",),
)
SIGNATURE_FAILURES = _counter(
    "fedsx_inbox_signature_failures",
    "Inbox requests refused 401 (signature, key or owner check), by refusal code.",
    ("reason",),
)
APPEND_SECONDS = _histogram(
    "fedsx_inbox_append_seconds",
    "Time to append a verified activity (the kernel's transaction).",
    (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)

# ── delivery and hosts ─────────────────────────────────────────────────────────────────
DELIVERY_ATTEMPTS = _counter(
    "fedsx_delivery_attempts",
    "Delivery attempts by outcome: delivered, retry, failed, gone, expired, refused.",
    ("outcome",),
)
DELIVERY_REQUEST_SECONDS = _histogram(
    "fedsx_delivery_request_seconds",
    "Time of one delivery attempt's POST (both signature schemes when the first gets 401).",
    (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
DELIVERY_LATENCY_SECONDS = _histogram(
    "fedsx_delivery_latency_seconds",
    "Time from an activity's post to its delivery to one inbox, retries included.",
    (0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 6 * 3600.0, 86400.0),
)
DELIVERY_SETTLED_ATTEMPTS = _histogram(
    "fedsx_delivery_settled_attempts",
    "Attempts a delivery took, counted when it settles (delivered, failed or expired).",
    (1, 2, 3, 4, 6, 8, 12, 16, 24),
)
HOST_STATE_CHANGES = _counter(
    "fedsx_host_state_changes",
    "Circuit-breaker state changes of remote hosts, by the state entered (ok, open, unavailable).",
    ("state",),
)

# ── triggers and flows ─────────────────────────────────────────────────────────────────
TRIGGER_FIRINGS = _counter(
    "fedsx_trigger_firings", "Trigger firings by outcome (flows/status.py).", ("outcome",)
)
FLOW_STARTS = _counter("fedsx_flow_starts", "Flow instances started, by flow.", ("flow",))
FLOW_RESUMES = _counter(
    "fedsx_flow_resumes",
    "Flow instances resumed, by flow and by what answered (operator, activity, timer).",
    ("flow", "kind"),
)
FLOW_CRASHES = _counter("fedsx_flow_crashes", "Flow drives that crashed, by flow.", ("flow",))


def enabled() -> bool:
    """``FEDSX["METRICS"]``, read on every call like every FEDSX setting (tests and the
    benchmark switch it)."""
    return fedsx_settings.METRICS


# Children bound once per label value: ``.labels()`` takes a lock and validates its values.
_children: dict[tuple[int, Any], Any] = {}


def _child(metric, *values: str):
    key = (id(metric), values)
    child = _children.get(key)
    if child is None:
        child = _children[key] = metric.labels(*values)
    return child


_ACCEPTED = INBOX_REQUESTS.labels("accepted")


def inbox_accepted(outcome: str = "accepted") -> None:
    """A 202: ``accepted`` (stored), or ``actor_gone`` (a deleted actor's Delete, nothing
    stored)."""
    if enabled():
        (_ACCEPTED if outcome == "accepted" else _child(INBOX_REQUESTS, outcome)).inc()


def inbox_refused(code: str, status: int) -> None:
    """A refusal of the gate; a 401 is a failed authentication (signature, key, owner)."""
    if enabled():
        _child(INBOX_REQUESTS, code).inc()
        if status == 401:
            _child(SIGNATURE_FAILURES, code).inc()


F = TypeVar("F", bound=Callable[..., Any])


def timed_append(fn: F) -> F:
    """Observe each successful append's duration in ``fedsx_inbox_append_seconds``."""

    @functools.wraps(fn)
    def append(*args, **kwargs):
        if not enabled():
            return fn(*args, **kwargs)
        started = time.perf_counter()
        result = fn(*args, **kwargs)
        APPEND_SECONDS.observe(time.perf_counter() - started)
        return result

    return append  # type: ignore[return-value]


@contextmanager
def delivery_request() -> Iterator[None]:
    """Time one delivery attempt's network work."""
    started = time.perf_counter()
    yield
    if enabled():
        DELIVERY_REQUEST_SECONDS.observe(time.perf_counter() - started)


SETTLED = frozenset({"delivered", "failed", "gone", "expired", "refused"})


def delivery_attempted(outcome: str, attempts: int, created_at: datetime | None = None) -> None:
    """One attempt's outcome; ``attempts`` counts this one. A delivered one's latency is
    taken from ``created_at`` (its post)."""
    if not enabled():
        return
    _child(DELIVERY_ATTEMPTS, outcome).inc()
    if outcome in SETTLED:
        DELIVERY_SETTLED_ATTEMPTS.observe(attempts)
    if outcome == "delivered" and created_at is not None:
        DELIVERY_LATENCY_SECONDS.observe((timezone.now() - created_at).total_seconds())


def _once_committed(child) -> None:
    """Count what a transaction did only if it commits: the triggers' and flows' work runs
    in transactions that roll back and are retried (a deadlock victim, a lost race), and a
    count taken inside would count such work twice. Outside a transaction: at once, with
    no database connection asked for (``on_commit`` would open one to check autocommit)."""
    connection = transaction.get_connection()
    if connection.in_atomic_block:
        connection.on_commit(child.inc)
    else:
        child.inc()


def host_state_changed(state: str) -> None:
    if enabled():
        _once_committed(_child(HOST_STATE_CHANGES, str(state)))


def trigger_fired(outcome: str) -> None:
    if enabled():
        _once_committed(_child(TRIGGER_FIRINGS, str(outcome)))


def flow_started(flow: str) -> None:
    if enabled():
        _once_committed(_child(FLOW_STARTS, flow))


def flow_resumed(flow: str, kind: str) -> None:
    """``kind``: the log entry that answered the wait (wait, receive, sleep, timeout)."""
    if enabled():
        _once_committed(_child(FLOW_RESUMES, flow, RESUMED_BY.get(kind, kind)))


# The engine's log kinds, as an operator names what resumed an instance.
RESUMED_BY = {"wait": "operator", "receive": "activity", "sleep": "timer", "timeout": "timer"}


def flow_crashed(flow: str) -> None:
    if enabled():
        _once_committed(_child(FLOW_CRASHES, flow))


from . import processes  # noqa: E402, F401  (connects the Celery worker's start and exit)
