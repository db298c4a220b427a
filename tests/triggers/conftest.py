from __future__ import annotations

import itertools

import pytest

from fedsx.cid import activity_cid
from fedsx.models import Activity, Actor, InboxEntry
from fedsx.signals import inbox_appended
from triggers.models import Trigger

from . import testflows  # noqa: F401  (registers test.done and test.crash)

SENDER = "https://remote.example/users/alice"
_numbers = itertools.count(1)


def follow(target: str = "http://testserver/actors/demo", sender: str = SENDER, **extra) -> dict:
    n = next(_numbers)
    return {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": f"{sender}#follows/{n}",
        "type": "Follow",
        "actor": sender,
        "object": target,
        **extra,
    }


def store_activity(payload: dict) -> Activity:
    actor = payload["actor"] if isinstance(payload["actor"], str) else payload["actor"]["id"]
    return Activity.objects.create(
        ap_id=payload.get("id"),
        activity_cid=activity_cid(payload),
        type=payload["type"],
        actor=actor,
        payload=payload,
    )


def append(recipient: Actor, payload: dict) -> InboxEntry:
    """What the kernel's append does, reduced to the rows the pipeline reads and the
    announcement the triggers app listens to."""
    activity = Activity.objects.filter(activity_cid=activity_cid(payload)).first()
    activity = activity or store_activity(payload)
    recipient.inbox_seq += 1
    recipient.save(update_fields=["inbox_seq"])
    entry = InboxEntry.objects.create(actor=recipient, seq=recipient.inbox_seq, activity=activity)
    inbox_appended.send(sender=InboxEntry, entries=[entry], using="default")
    return entry


def add_trigger(**fields) -> Trigger:
    fields.setdefault("activity_type", "Follow")
    fields.setdefault("flow_name", "approval")
    trigger = Trigger(**fields)
    trigger.full_clean(exclude=["trigger_cid"], validate_unique=False)
    trigger.save()
    return trigger


@pytest.fixture
def bob(db):
    from fedsx.actors import create_local_actor

    return create_local_actor("bob")
