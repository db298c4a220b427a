"""``manage.py inbox NAME``: the latest entries of a local actor's inbox log, newest last.

What an operator looks at to see that something arrived: each line is the entry's
sequence number, the activity's type, its id and its actor, and who forwarded it when
someone else than its actor delivered it.
"""

from __future__ import annotations

from typing import Any

from fedsx.api.serializers import InboxEntrySerializer
from fedsx.models import InboxEntry

from .post import OperatorCommand


class Command(OperatorCommand):
    help = "List the latest entries of a local actor's inbox (oldest first)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("name", help="local actor name")
        parser.add_argument("--limit", type=int, default=20, help="how many (default 20)")
        parser.add_argument("--type", dest="activity_type", help="only activities of this type")
        parser.add_argument("--json", action="store_true", help="machine-readable output")

    def handle(self, *args, name: str, limit: int, activity_type: str | None, **options: Any):
        self.as_json = options["json"]
        if limit < 1:
            self.fail("bad_limit", "--limit must be at least 1")
        actor = self.local_actor(name)
        entries = (
            InboxEntry.objects.filter(actor=actor)
            .select_related("activity")
            .defer("activity__payload")
        )
        if activity_type:
            entries = entries.filter(activity__type=activity_type)
        latest = list(entries.order_by("-seq")[:limit])[::-1]
        rows = InboxEntrySerializer(latest, many=True).data
        text = "\n".join(
            f"{e.seq:>6}  {e.activity.type:<10} {e.activity.ap_id or '(no id)'}"
            f"  from {e.activity.actor}"
            + (f" (forwarded by {e.activity.forwarded_by})" if e.activity.forwarded_by else "")
            for e in latest
        )
        self.emit(rows, text or f"{name}'s inbox is empty")
