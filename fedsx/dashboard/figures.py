"""The dashboard's figures, each with the admin list behind it.

Every query reads an index or a kept counter, never a scan of the logs: the inbox from the
hourly tallies (``fedsx.tallies``), deliveries by status and time from
``delivery_status_updated``, hosts from their own small table plus the (host, status) index, flow
instances from their status index, unapplied entries from the partial index the sweeper
uses. ``bench/dashboard.py`` times them over a million activities.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import urlencode

from django.db.models import Case, Count, Q, Value, When
from django.urls import reverse
from django.utils import timezone

from ..conf import fedsx_settings
from ..hosts import HOST_COUNTED, with_delivery_counts
from ..models import Delivery, Host, InboxTally

HOURS = 24
TOP_REASONS = 5  # refusal codes charted one by one; the rest are "other"
OTHER = "other"
FAILING_HOSTS = 10


@dataclass
class Figure:
    """One number and the admin list that shows what it counts."""

    label: str
    value: int
    url: str


@dataclass
class Hour:
    start: datetime
    counts: dict[str, int] = field(default_factory=dict)  # outcome → requests
    segments: list[Figure] = field(default_factory=list)  # in the chart's outcome order

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass
class InboxFigures:
    hours: list[Hour]
    outcomes: list[Figure]  # accepted, actor_gone, the charted reasons, then "other"
    accepted: Figure
    refused: Figure


@dataclass
class HostRow:
    host: Host
    url: str
    pending: Figure
    held: Figure


@dataclass
class Unapplied:
    total: Figure
    overdue: Figure
    oldest: datetime | None


def changelist(app_model: str, site: str = "admin", **filters) -> str:
    url = reverse(f"admin:{app_model}_changelist", current_app=site)
    return f"{url}?{urlencode(filters)}" if filters else url


def _iso(moment: datetime) -> str:
    return moment.isoformat()


# ── the inbox ──────────────────────────────────────────────────────────────────────────


def inbox(now: datetime | None = None, site: str = "admin") -> InboxFigures:
    """Requests per hour over the last ``HOURS`` hours (the current one included), by
    outcome; refusal codes beyond the ``TOP_REASONS`` most frequent are summed as other."""
    now = now or timezone.now()
    current = now.replace(minute=0, second=0, microsecond=0)
    first = current - timedelta(hours=HOURS - 1)
    end = current + timedelta(hours=1)
    hours = {first + timedelta(hours=i): Hour(first + timedelta(hours=i)) for i in range(HOURS)}
    totals: dict[str, int] = {}
    rows = InboxTally.objects.filter(hour__gte=first, hour__lt=end).values_list(
        "hour", "outcome", "count"
    )
    for hour, outcome, count in rows:
        totals[outcome] = totals.get(outcome, 0) + count
        slot = hours.get(hour)
        if slot is not None:
            slot.counts[outcome] = slot.counts.get(outcome, 0) + count
    reasons = sorted(
        (code for code in totals if code not in InboxTally.ANSWERED), key=lambda c: (-totals[c], c)
    )
    charted, rest = reasons[:TOP_REASONS], set(reasons[TOP_REASONS:])
    if rest:
        for slot in hours.values():
            other = sum(slot.counts.pop(code, 0) for code in rest)
            if other:
                slot.counts[OTHER] = other

    def tally_url(outcome: str | None, start: datetime = first, stop: datetime = end) -> str:
        filters = {"hour__gte": _iso(start), "hour__lt": _iso(stop)}
        if outcome == OTHER:
            filters["outcome__in"] = ",".join(sorted(rest))
        elif outcome is not None:
            filters["outcome"] = outcome
        return changelist("fedsx_inboxtally", site, **filters)

    gone = [InboxTally.ACTOR_GONE] if totals.get(InboxTally.ACTOR_GONE) else []
    order = [InboxTally.ACCEPTED, *gone, *charted, *([OTHER] if rest else [])]
    outcomes = [
        Figure(code, sum(slot.counts.get(code, 0) for slot in hours.values()), tally_url(code))
        for code in order
    ]
    for start, slot in hours.items():
        stop = start + timedelta(hours=1)
        slot.segments = [
            Figure(code, slot.counts[code], tally_url(code, start, stop))
            for code in order
            if slot.counts.get(code)
        ]
    refused_total = sum(count for code, count in totals.items() if code not in InboxTally.ANSWERED)
    refused_url = changelist(
        "fedsx_inboxtally",
        site,
        hour__gte=_iso(first),
        hour__lt=_iso(end),
        outcome__in=",".join(reasons),
    )
    return InboxFigures(
        hours=list(hours.values()),
        outcomes=outcomes,
        accepted=outcomes[0],
        refused=Figure("refused", refused_total, refused_url if reasons else tally_url(None)),
    )


# ── deliveries and hosts ───────────────────────────────────────────────────────────────


def deliveries(now: datetime | None = None, site: str = "admin") -> list[Figure]:
    """Deliveries pending and held now (all of them), then those that settled (delivered,
    failed, expired, cancelled) in the last ``HOURS`` hours; zeros too. Both read the
    (status, updated_at) index: a count of the settled ones reads the last day's entries
    only, not every delivery ever kept."""
    now = now or timezone.now()
    since = now - timedelta(hours=HOURS)

    def by_status(rows) -> dict[str, int]:
        return dict(rows.order_by().values_list("status").annotate(n=Count("*")))

    current = by_status(Delivery.objects.filter(status__in=HOST_COUNTED))
    settled = by_status(Delivery.objects.filter(status__in=Delivery.FINAL, updated_at__gte=since))
    return [
        *(
            Figure(s, current.get(s, 0), changelist("fedsx_delivery", site, status__exact=s))
            for s in HOST_COUNTED
        ),
        *(
            Figure(
                s,
                settled.get(s, 0),
                changelist("fedsx_delivery", site, status__exact=s, updated_at__gte=_iso(since)),
            )
            for s in Delivery.FINAL
        ),
    ]


def failing_hosts(site: str = "admin", limit: int = FAILING_HOSTS) -> list[HostRow]:
    """Hosts in trouble: unavailable first, then open breakers, then the most consecutive
    failures; each with its pending and held deliveries (the admin's and API's counts)."""
    severity = Case(
        When(state=Host.State.UNAVAILABLE, then=Value(0)),
        When(state=Host.State.OPEN, then=Value(1)),
        default=Value(2),
    )
    troubled = with_delivery_counts(
        Host.objects.filter(~Q(state=Host.State.OK) | Q(consecutive_failures__gt=0))
        .annotate(severity=severity)
        .order_by("severity", "-consecutive_failures", "-failing_days", "host"),
        *HOST_COUNTED,
    )[:limit]

    def figure(host: Host, status: str) -> Figure:
        return Figure(
            status,
            getattr(host, f"n_{status}"),
            changelist("fedsx_delivery", site, host=host.host, status__exact=status),
        )

    return [
        HostRow(
            host=row,
            url=reverse("admin:fedsx_host_change", args=[row.pk], current_app=site),
            pending=figure(row, Delivery.Status.PENDING),
            held=figure(row, Delivery.Status.HELD),
        )
        for row in troubled
    ]


# ── flows and triggers ─────────────────────────────────────────────────────────────────
# The flows and triggers apps are installed with fedsx (the README says so) and depend on
# it; imported here, late, so the kernel never imports them when it loads.


def instances_by_status(site: str = "admin") -> list[Figure]:
    from flows.models import FlowInstance

    counts = dict(FlowInstance.objects.order_by().values_list("status").annotate(n=Count("*")))
    return [
        Figure(
            status,
            counts.get(status, 0),
            changelist("flows_flowinstance", site, status__exact=status),
        )
        for status in FlowInstance.Status.values
    ]


def instances_waiting(site: str = "admin") -> list[Figure]:
    from flows.models import FlowInstance
    from flows.store import waiting_counts

    suspended = FlowInstance.Status.SUSPENDED
    return [
        Figure(
            kind,
            count,
            changelist(
                "flows_flowinstance", site, status__exact=suspended, waiting_kind__exact=kind
            ),
        )
        for kind, count in waiting_counts().items()
    ]


def unapplied(now: datetime | None = None, site: str = "admin") -> Unapplied:
    """Entries whose triggers have not been applied yet (the sweeper's definition), those
    the sweeper should have handed out again already, and the oldest one's time."""
    from triggers.enqueue import pending_entries

    now = now or timezone.now()
    pending = pending_entries(older_than_seconds=0)
    overdue = pending_entries()
    cutoff = now - timedelta(seconds=fedsx_settings.SWEEP_AFTER_SECONDS)
    oldest = pending.order_by("created_at").values_list("created_at", flat=True).first()
    filters = {"triggers_applied_at__isnull": "True"}
    return Unapplied(
        total=Figure("unapplied", pending.count(), changelist("fedsx_inboxentry", site, **filters)),
        overdue=Figure(
            "overdue",
            overdue.count(),
            changelist("fedsx_inboxentry", site, created_at__lte=_iso(cutoff), **filters),
        ),
        oldest=oldest,
    )
