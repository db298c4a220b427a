"""``manage.py hosts <verb>``: the remote hosts we deliver to, and their circuit breakers.

``list [--state S]`` shows each host's state, breaker figures and how many deliveries it
holds; ``clear HOST`` is the operator's all-clear: the breaker closes and the host's held
deliveries go now. Each verb takes ``--json``; a refusal prints one line and exits non-zero.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import Count

from fedsx.hosts import normalize_host
from fedsx.models import Delivery, Host

from .deliveries import deliveries, when
from .post import OperatorCommand

STATES = Host.State.values
COUNTED = (Delivery.Status.PENDING, Delivery.Status.HELD)


def host_as_dict(host: Host, counts: dict[tuple[str, str], int]) -> dict[str, Any]:
    return {
        "host": host.host,
        "state": host.state,
        "consecutive_failures": host.consecutive_failures,
        "failing_days": host.failing_days,
        "retry_at": host.retry_at,
        "unavailable_since": host.unavailable_since,
        "signature_scheme": host.signature_scheme,
        "last_success_at": host.last_success_at,
        "last_failure_at": host.last_failure_at,
        "last_error": host.last_error,
        "pending": counts.get((host.host, Delivery.Status.PENDING), 0),
        "held": counts.get((host.host, Delivery.Status.HELD), 0),
    }


class Command(OperatorCommand):
    help = "Remote hosts and their circuit breakers: list, clear."

    def add_arguments(self, parser) -> None:
        verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
        listing = verbs.add_parser("list", help="hosts with their state and held deliveries")
        listing.add_argument("--state", help="only hosts in this state: " + ", ".join(STATES))
        clear = verbs.add_parser("clear", help="close a host's breaker, release what it holds")
        clear.add_argument("host", metavar="HOST", help="host name (or host:port)")
        for sub in (listing, clear):
            sub.add_argument("--json", action="store_true", help="machine-readable output")

    def handle(self, *args, verb: str, **options) -> None:
        self.as_json = options["json"]
        getattr(self, "do_" + verb)(**options)

    def do_list(self, state: str | None, **_) -> None:
        if state is not None and state not in STATES:
            self.fail("bad_state", f"--state must be one of {', '.join(STATES)}")
        hosts = Host.objects.order_by("host")
        if state is not None:
            hosts = hosts.filter(state=state)
        hosts = list(hosts)
        counted = Delivery.objects.filter(status__in=COUNTED)
        if state is not None:
            counted = counted.filter(host__in=[h.host for h in hosts])
        counts = {
            (row["host"], row["status"]): row["n"]
            for row in counted.values("host", "status").annotate(n=Count("id")).order_by()
        }
        rows = [host_as_dict(h, counts) for h in hosts]
        lines = []
        for r in rows:
            line = (
                f"{r['host']}  {r['state']}  failures {r['consecutive_failures']}"
                f"  failing days {r['failing_days']}"
            )
            if r["state"] != Host.State.OK:
                line += f"  retry at {when(r['retry_at'])}"
            if r["unavailable_since"]:
                line += f"  unavailable since {when(r['unavailable_since'])}"
            lines.append(line + f"  pending {r['pending']}  held {r['held']}")
        self.emit(rows, "\n".join(lines) or "no hosts")

    def do_clear(self, host: str, **_) -> None:
        from fedsx import hosts

        name = normalize_host(host)
        if not name or not Host.objects.filter(host=name).exists():
            self.fail("unknown_host", f"no host {host!r} is known (`manage.py hosts list`)")
        with transaction.atomic():
            released = hosts.clear(name)
        if released is None:  # gone between the look and the clear
            self.fail("unknown_host", f"no host {host!r} is known (`manage.py hosts list`)")
        self.emit(
            {"host": name, "state": Host.State.OK, "released": released},
            f"{name} cleared: {deliveries(len(released))} released from holding",
        )
