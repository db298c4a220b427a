"""``manage.py deliveries <verb>``: look at and steer outbound deliveries.

``list``, ``show ID``, ``retry ID | --host H | --failed`` and ``cancel ID``; each takes
``--json``. A refusal (an unknown delivery or host, a bad status) prints one line on
stderr, exits non-zero and changes nothing.
"""

from __future__ import annotations

import re

from django.db import transaction

from fedsx.api.serializers import CancelledSerializer, DeliverySerializer, RetriedSerializer
from fedsx.errors import FederationError
from fedsx.hosts import normalize_host
from fedsx.models import Delivery, Host

from .post import OperatorCommand

Status = Delivery.Status
STATUSES = Status.values
MAX_LIMIT = 10_000  # more is a dump, not a listing
DELIVERY_ID = re.compile(r"[0-9]{1,18}")  # ASCII digits within a bigint ("²" is a digit too)
# What a host-wide or --failed retry sends again: never what an operator cancelled.
RETRIED_IN_BULK = (Status.PENDING, Status.HELD, Status.FAILED, Status.EXPIRED)
GIVEN_UP = (Status.FAILED, Status.EXPIRED)
VERBS = {
    "list": "list deliveries, newest first",
    "show": "show one delivery",
    "retry": "send deliveries again now: one, a host's or every failed one",
    "cancel": "stop trying a pending or held delivery",
}


def deliveries(n: int) -> str:
    return f"{n} delivery" if n == 1 else f"{n} deliveries"


def when(moment) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%S}" if moment else "—"


def _outcome(d: Delivery) -> str:
    match d.status:
        case Status.PENDING:
            text = f"next {when(d.next_attempt_at)}"
        case Status.DELIVERED:
            text = f"delivered {when(d.delivered_at)}"
        case _:
            text = ""
    if d.status != Status.DELIVERED and (d.last_error or d.last_status):
        why = d.last_error or f"HTTP {d.last_status}"
        text = f"{text}  {why[:60]}" if text else why[:60]
    return text


class Command(OperatorCommand):
    help = "Outbound deliveries: " + ", ".join(VERBS) + "."

    def add_arguments(self, parser) -> None:
        verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
        sub = {name: verbs.add_parser(name, help=text) for name, text in VERBS.items()}
        for verb in sub.values():
            verb.add_argument("--json", action="store_true", help="machine-readable output")
        listing = sub["list"]
        listing.add_argument(
            "--status", help="only deliveries in this status: " + ", ".join(STATUSES)
        )
        listing.add_argument("--host", help="only deliveries to this host")
        listing.add_argument("--activity", help="only deliveries of this activity (its id)")
        listing.add_argument("--limit", type=int, default=50, help="at most (50)")
        sub["show"].add_argument("id", help="the delivery id")
        sub["retry"].add_argument("id", nargs="?", help="the delivery id")
        sub["retry"].add_argument(
            "--host", help="every pending, held, failed or expired delivery to this host"
        )
        sub["retry"].add_argument(
            "--failed", action="store_true", help="every failed or expired delivery"
        )
        sub["cancel"].add_argument("id", help="the delivery id")

    def handle(self, *args, verb: str, **options) -> None:
        self.as_json = options["json"]
        getattr(self, "do_" + verb)(**options)

    # ── helpers ───────────────────────────────────────────────────────────────────

    def delivery(self, text: str) -> Delivery:
        found = None
        if DELIVERY_ID.fullmatch(text):
            found = Delivery.objects.select_related("activity").filter(pk=int(text)).first()
        if found is None:
            self.fail("no_such_delivery", f"there is no delivery {text!r}")
        return found

    def known_host(self, text: str) -> str:
        host = normalize_host(text)
        if not host or not (
            Host.objects.filter(host=host).exists() or Delivery.objects.filter(host=host).exists()
        ):
            self.fail("unknown_host", f"no delivery has gone or is going to host {text!r}")
        return host

    # ── verbs ─────────────────────────────────────────────────────────────────────

    def do_list(
        self, status: str | None, host: str | None, activity: str | None, limit: int, **_
    ) -> None:
        if not 1 <= limit <= MAX_LIMIT:
            self.fail("bad_limit", f"--limit must be between 1 and {MAX_LIMIT}")
        if status is not None and status not in STATUSES:
            self.fail("bad_status", f"--status must be one of {', '.join(STATUSES)}")
        found = Delivery.objects.select_related("activity").defer("activity__payload")
        if status is not None:
            found = found.filter(status=status)
        if host is not None:
            found = found.filter(host=normalize_host(host))
        if activity is not None:
            found = found.filter(activity__ap_id=activity)
        rows = list(found.order_by("-id")[:limit])
        lines = [
            f"{d.pk:>8}  {d.status:<9}  {d.host}  attempts {d.attempts}  {_outcome(d)}".rstrip()
            + f"  {d.activity.type} {d.activity.ap_id}"
            for d in rows
        ]
        self.emit(DeliverySerializer(rows, many=True).data, "\n".join(lines) or "no deliveries")

    def do_show(self, id: str, **_) -> None:
        d = self.delivery(id)
        host = Host.objects.filter(host=d.host).first()
        data = DeliverySerializer(d).data
        data["host_state"] = host.state if host else Host.State.OK
        waiting = ""
        if d.status == Status.HELD and host is not None:
            waiting = f" (host {host.state}, probe at {when(host.retry_at)})"
        lines = [
            f"delivery {d.pk}: {d.status}{waiting}",
            f"  activity:     {d.activity.ap_id} ({d.activity.type})",
            f"  inbox:        {d.inbox_url}",
            f"  host:         {d.host} ({data['host_state']})",
            f"  attempts:     {d.attempts}",
            f"  last status:  {d.last_status or '—'}",
            f"  last error:   {d.last_error or '—'}",
            f"  next attempt: {when(d.next_attempt_at if d.status == Status.PENDING else None)}",
            f"  delivered at: {when(d.delivered_at)}",
        ]
        if d.waits_for_id:
            lines.append(f"  waits for:    delivery {d.waits_for_id}")
        self.emit(data, "\n".join(lines))

    def do_retry(self, id: str | None, host: str | None, failed: bool, **_) -> None:
        from fedsx.delivery import held_hosts, retry, retry_one

        if id is not None and (host is not None or failed):
            self.fail("bad_arguments", "give a delivery id, or --host and/or --failed, not both")
        if id is None and host is None and not failed:
            self.fail("bad_arguments", "give a delivery id, --host HOST or --failed")
        if id is not None:
            try:
                ids = retry_one(self.delivery(id))
            except FederationError as exc:
                self.fail(exc.code, str(exc.detail))
        else:
            chosen = Delivery.objects.filter(status__in=GIVEN_UP if failed else RETRIED_IN_BULK)
            if host is not None:
                chosen = chosen.filter(host=self.known_host(host))
            with transaction.atomic():
                ids = retry(chosen)
        held = held_hosts(Delivery.objects.filter(pk__in=ids))
        text = f"{deliveries(len(ids))} handed out again"
        if id is not None:
            text = f"delivery {ids[0]} handed out again" if ids else "nothing to retry"
        for name in held:
            text += (
                f"\nnote: {name} is held (breaker open or unavailable): its deliveries wait"
                f" for its probe, or for `manage.py hosts clear {name}`"
            )
        self.emit(RetriedSerializer({"retried": ids, "held_hosts": held}).data, text)

    def do_cancel(self, id: str, **_) -> None:
        from fedsx.delivery import cancel_one

        delivery = self.delivery(id)
        try:
            cancel_one(delivery)
        except FederationError as exc:
            self.fail(exc.code, str(exc.detail))
        self.emit(
            CancelledSerializer({"cancelled": [delivery.pk]}).data,
            f"delivery {delivery.pk} cancelled",
        )
