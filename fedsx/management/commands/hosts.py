"""``manage.py hosts <verb>``: the remote hosts we deliver to, and their circuit breakers.

``list [--state S]`` shows each host's state, breaker figures and how many deliveries it
holds; ``clear HOST`` is the operator's all-clear: the breaker closes and the host's held
deliveries go now. Each verb takes ``--json``; a refusal prints one line and exits non-zero.
"""

from __future__ import annotations

from django.db import transaction

from fedsx.api.serializers import ClearedSerializer, HostSerializer
from fedsx.hosts import HOST_COUNTED, normalize_host, with_delivery_counts
from fedsx.models import Host

from .deliveries import deliveries, when
from .post import OperatorCommand

STATES = Host.State.values


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
        found = list(with_delivery_counts(hosts, *HOST_COUNTED))
        lines = []
        for h in found:
            line = (
                f"{h.host}  {h.state}  failures {h.consecutive_failures}"
                f"  failing days {h.failing_days}"
            )
            if h.state != Host.State.OK:
                line += f"  retry at {when(h.retry_at)}"
            if h.unavailable_since:
                line += f"  unavailable since {when(h.unavailable_since)}"
            lines.append(line + f"  pending {h.n_pending}  held {h.n_held}")
        rows = HostSerializer(found, many=True).data
        self.emit(rows, "\n".join(lines) or "no hosts")

    def do_clear(self, host: str, **_) -> None:
        from fedsx import hosts

        name = normalize_host(host)
        with transaction.atomic():
            released = hosts.clear(name) if name else None
        if released is None:
            self.fail("unknown_host", f"no host {host!r} is known (`manage.py hosts list`)")
        self.emit(
            ClearedSerializer({"host": name, "state": Host.State.OK, "released": released}).data,
            f"{name} cleared: {deliveries(len(released))} released from holding",
        )
