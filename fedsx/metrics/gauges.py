"""Gauges read from the database when ``/metrics`` is scraped: what is pending, held,
waiting or unapplied right now. Each is one query on an index (the partial indexes the
sweepers use), so a scrape stays cheap with millions of rows; counted in the database,
they are the same whichever process answers the scrape.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from django.apps import apps
from django.db import DatabaseError
from django.db.models import Count, Min
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from fedsx.conf import fedsx_settings
from fedsx.models import Delivery, Host

logger = logging.getLogger("fedsx.metrics")

Status = Delivery.Status


class DatabaseGauges(Collector):
    """The scrape-time gauges; a failing database is reported as
    ``fedsx_metrics_database_up 0`` rather than failing the scrape."""

    def describe(self) -> Iterator[GaugeMetricFamily]:
        return iter(())  # nothing to register up front: no query at registration

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            families = [*deliveries(), *held_hosts(), *unapplied(), *waiting_instances()]
        except DatabaseError:
            logger.exception("reading the metrics' gauges from the database failed")
            families = []
        up = GaugeMetricFamily(
            "fedsx_metrics_database_up", "Whether the database gauges could be read (1) or not."
        )
        up.add_metric([], 1 if families else 0)
        yield from families
        yield up


def _age(oldest) -> float:
    return max(0.0, (timezone.now() - oldest).total_seconds()) if oldest else 0.0


def deliveries() -> list[GaugeMetricFamily]:
    # On the partial index of pending deliveries (the sweeper's).
    pending = Delivery.objects.filter(status=Status.PENDING).aggregate(
        count=Count("pk"), oldest=Min("next_attempt_at")
    )
    # Held deliveries belong to held hosts (few): counted per held host on (host, status).
    held_hosts = list(_held_hosts().values_list("host", flat=True))
    held = (
        list(
            Delivery.objects.filter(status=Status.HELD, host__in=held_hosts)
            .values("host")
            .annotate(count=Count("pk"))
            .order_by("-count", "host")
        )
        if held_hosts
        else []
    )
    counts = GaugeMetricFamily(
        "fedsx_deliveries", "Deliveries not settled yet, by status.", labels=["status"]
    )
    counts.add_metric([Status.PENDING], pending["count"])
    counts.add_metric([Status.HELD], sum(row["count"] for row in held))
    lag = GaugeMetricFamily(
        "fedsx_deliveries_overdue_seconds",
        "How long the oldest pending delivery has been due (the delivery sweeper's lag).",
    )
    lag.add_metric([], _age(pending["oldest"]))  # 0 when none is due yet
    per_host = GaugeMetricFamily(
        "fedsx_host_held_deliveries",
        "Deliveries held for a held host (breaker open or unavailable); the"
        " FEDSX METRICS_TOP_HOSTS hosts holding the most.",
        labels=["host"],
    )
    for row in held[: fedsx_settings.METRICS_TOP_HOSTS]:
        per_host.add_metric([row["host"]], row["count"])
    return [counts, lag, per_host]


def _held_hosts():
    from fedsx.hosts import held

    return held().order_by()


def held_hosts() -> list[GaugeMetricFamily]:
    rows = {
        row["state"]: row
        for row in _held_hosts()
        .values("state")
        .annotate(count=Count("pk"), since=Min("held_since"))
    }
    family = GaugeMetricFamily(
        "fedsx_hosts_held", "Remote hosts whose deliveries are held, by state.", labels=["state"]
    )
    for state in (Host.State.OPEN, Host.State.UNAVAILABLE):
        family.add_metric([state], rows[state]["count"] if state in rows else 0)
    # Whichever host it is: an alert on it needs no per-host series (bounded to the top N).
    longest = GaugeMetricFamily(
        "fedsx_hosts_held_longest_seconds",
        "How long the host held longest has had its deliveries held (0 when none is held).",
    )
    since = [row["since"] for row in rows.values() if row["since"] is not None]
    longest.add_metric([], _age(min(since)) if since else 0.0)
    return [family, longest]


def unapplied() -> list[GaugeMetricFamily]:
    if not apps.is_installed("triggers"):
        return []  # no triggers, no entries waiting for them
    from triggers.enqueue import pending_entries

    # The sweeper's own definition, on its partial index of unapplied entries.
    row = pending_entries(older_than_seconds=0).aggregate(
        count=Count("pk"), oldest=Min("created_at")
    )
    count = GaugeMetricFamily(
        "fedsx_inbox_unapplied_entries", "Inbox entries whose triggers are not applied yet."
    )
    count.add_metric([], row["count"])
    lag = GaugeMetricFamily(
        "fedsx_inbox_unapplied_oldest_seconds",
        "Age of the oldest inbox entry whose triggers are not applied (the triggers"
        " sweeper's lag).",
    )
    lag.add_metric([], _age(row["oldest"]))
    return [count, lag]


def waiting_instances() -> list[GaugeMetricFamily]:
    if not apps.is_installed("flows"):
        return []
    from flows.store import waiting_counts

    family = GaugeMetricFamily(
        "fedsx_flow_instances_waiting",
        "Suspended flow instances by what they wait for (operator, activity, timer).",
        labels=["kind"],
    )
    for kind, count in waiting_counts().items():
        family.add_metric([kind], count)
    return [family]
