"""Host health: a per-host circuit breaker and the unavailable mark.

A host's connection failures, timeouts and 5xx answers count; any answer that shows the
server is up (2xx, a 4xx, a 429) resets the count. After ``BREAKER_THRESHOLD`` failures in
a row the breaker opens: the host's deliveries are *held*, spending no attempts, and after
``BREAKER_COOLOFF_SECONDS`` one probe goes. A success closes the breaker and releases the
held deliveries in order. A host that is still failing on ``HOST_UNAVAILABLE_AFTER_DAYS``
distinct days is *unavailable*: its deliveries wait as held (never dropped) and a probe
goes once per ``UNAVAILABLE_PROBE_SECONDS``, until a success or an operator's clear.
"""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from . import metrics
from .conf import fedsx_settings
from .counts import count_of
from .models import Delivery, Host, host_of

State = Host.State


def normalize_host(text: str) -> str:
    """A host as stored: ``Remote.Example.``, ``https://remote.example/inbox`` →
    ``remote.example`` (a port other than the scheme's stays)."""
    text = text.strip()
    if "//" in text:
        return host_of(text)
    return text.lower().rstrip(".")


def host_rows(names: set[str]) -> dict[str, Host]:
    """The Host rows of these hosts, made where missing: one query when all exist (a
    get_or_create per host cost a query each, per batch), two more when some are new (made
    together; a row another worker makes at the same moment is taken as it is)."""
    rows = {row.host: row for row in Host.objects.filter(host__in=names).order_by()}
    missing = names - rows.keys()
    if missing:
        Host.objects.bulk_create([Host(host=name) for name in missing], ignore_conflicts=True)
        rows |= {row.host: row for row in Host.objects.filter(host__in=missing).order_by()}
    return rows


def is_held(host: Host) -> bool:
    """Does this host hold its deliveries now (breaker open or host unavailable, with the
    probe not due yet)?"""
    if host.state == State.OK:
        return False
    return host.retry_at is not None and host.retry_at > timezone.now()


def claim_probe(host: Host) -> bool:
    """Take the one probe a held host may get once its cool-off is over: of all workers
    asking at once, exactly one is told yes (the conditional UPDATE is the claim)."""
    now = timezone.now()
    claimed = Host.objects.filter(pk=host.pk, retry_at__lte=now).exclude(state=State.OK)
    taken = claimed.update(retry_at=now + _cooloff(host.state)) == 1
    if taken:
        host.retry_at = now + _cooloff(host.state)
    return taken


def _cooloff(state: str) -> timedelta:
    if state == State.UNAVAILABLE:
        return timedelta(seconds=fedsx_settings.UNAVAILABLE_PROBE_SECONDS)
    return timedelta(seconds=fedsx_settings.BREAKER_COOLOFF_SECONDS)


def record_up(host: Host, scheme: str | None = None) -> list[int]:
    """The host answered: close its breaker, forget its failures, remember which signature
    scheme it took; returns the ids of deliveries released from holding (to dispatch)."""
    changed = (
        host.state != State.OK
        or host.consecutive_failures
        or host.failing_days
        or (scheme and scheme != host.signature_scheme)
    )
    if not changed:
        return []
    now = timezone.now()
    was_held = host.state != State.OK
    host.state, host.consecutive_failures, host.failing_days = State.OK, 0, 0
    host.retry_at = host.unavailable_since = host.held_since = None
    host.last_success_at = now
    if scheme:
        host.signature_scheme = scheme
    host.save()
    if was_held:
        metrics.host_state_changed(State.OK)
    return release_held(host.host) if was_held else []


def record_down(host: Host, error: str) -> None:
    """A connection failure, timeout or 5xx: count it; open the breaker at the threshold;
    mark the host unavailable when it has failed on enough distinct days."""
    now = timezone.now()
    with transaction.atomic():
        row = Host.objects.select_for_update().get(pk=host.pk)
        was = row.state
        row.consecutive_failures += 1
        row.last_failure_at = now
        row.last_error = error[:500]
        if row.last_failure_day != now.date():
            row.failing_days += 1
            row.last_failure_day = now.date()
        if row.failing_days >= fedsx_settings.HOST_UNAVAILABLE_AFTER_DAYS:
            if row.state != State.UNAVAILABLE:
                row.state, row.unavailable_since = State.UNAVAILABLE, now
                row.retry_at = now + _cooloff(State.UNAVAILABLE)
        elif row.consecutive_failures >= fedsx_settings.BREAKER_THRESHOLD and row.state == State.OK:
            row.state = State.OPEN
            row.retry_at = now + _cooloff(State.OPEN)
        if was == State.OK and row.state != State.OK:
            row.held_since = now
        row.save()
    if row.state != was:
        metrics.host_state_changed(row.state)
    for name in ("state", "consecutive_failures", "failing_days", "retry_at", "last_failure_day"):
        setattr(host, name, getattr(row, name))


def release_held(host: str) -> list[int]:
    """Held deliveries of this host back to pending, due now; returns their ids in order."""
    with transaction.atomic():
        ids = list(
            Delivery.objects.select_for_update()
            .filter(host=host, status=Delivery.Status.HELD)
            .order_by("id")
            .values_list("pk", flat=True)
        )
        Delivery.objects.filter(pk__in=ids).update(
            status=Delivery.Status.PENDING, next_attempt_at=timezone.now(), claimed_until=None
        )
    return ids


def clear(host: str) -> list[int] | None:
    """The operator's clear: the host is healthy again as far as we know; its held
    deliveries go now. None when the host is unknown."""
    row = Host.objects.filter(host=host).first()
    if row is None:
        return None
    if row.state != State.OK:
        metrics.host_state_changed(State.OK)
    row.state, row.consecutive_failures, row.failing_days = State.OK, 0, 0
    row.retry_at = row.unavailable_since = row.held_since = None
    row.save()
    return release_held(host)


def probes_due() -> list[int]:
    """For each held host whose probe is due, one held delivery back to pending (the
    sweeper hands it out; the worker claims the probe)."""
    now = timezone.now()
    ids = []
    for host in Host.objects.exclude(state=State.OK).filter(retry_at__lte=now).order_by():
        first = (
            Delivery.objects.filter(host=host.host, status=Delivery.Status.HELD)
            .order_by("id")
            .values_list("pk", flat=True)
            .first()
        )
        if first is not None:
            Delivery.objects.filter(pk=first, status=Delivery.Status.HELD).update(
                status=Delivery.Status.PENDING, next_attempt_at=now, claimed_until=None
            )
            ids.append(first)
    return ids


def held(hosts=None):
    """The hosts whose deliveries are held: breaker open, or unavailable (not ok)."""
    return (Host.objects.all() if hosts is None else hosts).exclude(state=State.OK)


# The deliveries a host still has to take: counted per host by the admin, the API and the
# dashboard.
HOST_COUNTED = (Delivery.Status.PENDING, Delivery.Status.HELD)


def with_delivery_counts(hosts, *statuses: str):
    """``hosts`` annotated with ``n_<status>``: how many of each host's deliveries are in
    each status (one subquery per status, on the (host, status) index)."""
    return hosts.annotate(
        **{
            f"n_{status}": count_of(Delivery.objects.filter(status=status), "host", "host")
            for status in statuses
        }
    )
