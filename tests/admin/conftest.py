"""Known federation data for the dashboard's tests: inbox tallies, deliveries, hosts, flow
instances and inbox entries, with the figures the dashboard must show for them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission, User
from django.utils import timezone

from fedsx.dashboard.admin import PARTS
from fedsx.models import Activity, Actor, Delivery, Host, InboxEntry, InboxTally
from fedsx.tallies import inbox_tally
from flows.models import FlowInstance


@pytest.fixture(autouse=True)
def _empty_tally():
    """Counts other tests' inbox requests left in this process are not this test's."""
    inbox_tally.counts.clear()
    yield
    inbox_tally.counts.clear()


def this_hour():
    return timezone.now().replace(minute=0, second=0, microsecond=0)


def tally(hours_ago: int, outcome: str, count: int) -> None:
    InboxTally.objects.create(
        hour=this_hour() - timedelta(hours=hours_ago), outcome=outcome, count=count
    )


DELIVERIES = {  # host → statuses of its deliveries
    "gone.example": ["held", "held", "held", "expired"],
    "down.example": ["held", "pending", "failed"],
    "flaky.example": ["pending", "delivered", "delivered"],
    "fine.example": ["delivered", "delivered", "cancelled"],
}
HOSTS = {  # host → (state, consecutive failures, failing days)
    "gone.example": ("unavailable", 30, 8),
    "down.example": ("open", 6, 1),
    "flaky.example": ("ok", 2, 1),
    "fine.example": ("ok", 0, 0),
}
INSTANCES = [  # (status, waiting kind)
    ("suspended", "operator"),
    ("suspended", "operator"),
    ("suspended", "timer"),
    ("suspended", "activity"),
    ("done", ""),
    ("done", ""),
    ("done", ""),
    ("crashed", ""),
]


@pytest.fixture
def known(demo):
    """The records; returns the figures expected of them."""
    tally(0, "accepted", 7)
    tally(0, "bad_signature", 3)
    tally(2, "accepted", 2)
    tally(2, "domain_blocked", 1)
    tally(23, "accepted", 5)  # the oldest hour shown
    tally(24, "accepted", 100)  # a day ago: not shown
    tally(30, "bad_signature", 50)
    activity = Activity.objects.create(
        ap_id=f"{demo.ap_id}/activities/1",
        activity_cid="bcid-1",
        type="Create",
        actor=demo.ap_id,
        payload={"type": "Create"},
    )
    for name, (state, failures, days) in HOSTS.items():
        Host.objects.create(
            host=name,
            state=state,
            consecutive_failures=failures,
            failing_days=days,
            last_error="HTTP 503" if failures else "",
        )
    for name, statuses in DELIVERIES.items():
        for n, status in enumerate(statuses):
            Delivery.objects.create(
                activity=activity,
                sender=demo,
                inbox_url=f"https://{name}/inbox/{n}",
                host=name,
                status=status,
            )
    for status, kind in INSTANCES:
        FlowInstance.objects.create(
            flow_name="approval", code_hash="x", status=status, waiting_kind=kind
        )
    remote = Actor.objects.create(ap_id="https://r.example/u/ann", domain="r.example")
    for n, (applied, age) in enumerate([(False, 3600), (False, 1), (True, 7200)]):
        received = Activity.objects.create(
            ap_id=f"{remote.ap_id}/a/{n}",
            activity_cid=f"bcid-in-{n}",
            type="Like",
            actor=remote.ap_id,
            payload={"type": "Like"},
        )
        created = timezone.now() - timedelta(seconds=age)
        InboxEntry.objects.create(
            actor=demo,
            seq=n + 1,
            activity=received,
            created_at=created,
            triggers_applied_at=created if applied else None,
        )
    return {
        "accepted": 14,
        "refused": 4,
        "outcomes": {"accepted": 14, "bad_signature": 3, "domain_blocked": 1},
        "deliveries": {
            "pending": 2,
            "delivered": 4,
            "failed": 1,
            "expired": 1,
            "held": 4,
            "cancelled": 1,
        },
        "hosts": ["gone.example", "down.example", "flaky.example"],
        "held": {"gone.example": 3, "down.example": 1, "flaky.example": 0},
        "pending": {"gone.example": 0, "down.example": 1, "flaky.example": 1},
        "instances": {
            "running": 0,
            "suspended": 4,
            "done": 3,
            "crashed": 1,
            "cancelled": 0,
            "nondeterministic": 0,
        },
        "waiting": {"operator": 2, "activity": 1, "timer": 1},
        "unapplied": 2,
        "overdue": 1,
    }


def staff_with(*perms: str, username: str = "op") -> User:
    user = User.objects.create_user(username, password="pw-for-tests", is_staff=True)
    for perm in perms:
        app_label, codename = perm.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    return user


@pytest.fixture
def operator(db):
    """A staff user with exactly the view permissions the dashboard needs."""
    return staff_with(*PARTS.values())
