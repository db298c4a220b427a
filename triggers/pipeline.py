"""apply_triggers: what happens to a committed inbox entry.

For one entry (one activity in one local actor's inbox): look up the candidate triggers by
activity type and actor scope in the index, drop those whose sender scope or guard fails
(``guard_passes``), drop those already in the actor's ``triggers_fired`` for this activity,
and hand each of the rest to ``flow_dispatch``, which records one Firing each. Then mark the
entry applied, which takes it off the sweeper's list. Running it twice is harmless.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction
from django.utils import timezone

from fedsx.models import Activity, Actor, InboxEntry

from .dispatch import flow_dispatch, record_guard_error
from .guards import guard_passes
from .models import Firing
from .registry import TriggerIndex, trigger_index

__all__ = ["apply_entries", "apply_triggers", "guard_document", "guard_passes", "triggers_fired"]


def guard_document(activity: Activity, recipient: Actor) -> dict:
    """What a guard sees: the activity JSON with the verified sender and the recipient ids."""
    return {**activity.payload, "actor": activity.actor, "recipient": recipient.ap_id}


def triggers_fired(actor: Actor | int, activity_cid: str) -> set[str]:
    """The trigger_cids already fired for this activity in this actor's inbox."""
    return set(
        Firing.objects.filter(actor=actor, activity_cid=activity_cid).values_list(
            "trigger_cid", flat=True
        )
    )


def apply_triggers(entry: InboxEntry, index: TriggerIndex | None = None) -> list[Firing]:
    """Fire every matching trigger not yet fired for this entry; returns the new Firings."""
    index = index or trigger_index()
    activity, recipient = entry.activity, entry.actor
    verdicts = index.match(
        activity.type, recipient.username, activity.actor, guard_document(activity, recipient)
    )
    if not (verdicts.passed or verdicts.errors):
        mark_applied([entry.pk])
        return []
    firings: list[Firing] = []
    # One transaction per entry: its firings, their flow instances and the applied mark
    # commit together (one commit, which is most of the cost here, instead of one each).
    with transaction.atomic():
        fired = triggers_fired(entry.actor_id, activity.activity_cid)
        for trigger, error in verdicts.errors:
            if trigger.trigger_cid not in fired:
                fired.add(trigger.trigger_cid)
                if firing := record_guard_error(trigger, entry, error):
                    firings.append(firing)
        for trigger in verdicts.passed:
            if trigger.trigger_cid not in fired:
                fired.add(trigger.trigger_cid)
                if firing := flow_dispatch(trigger, entry):
                    firings.append(firing)
        mark_applied([entry.pk])
    return firings


def apply_entries(entry_ids: Iterable[int], *, again: bool = False) -> int:
    """Apply triggers to these entries (skipping those already applied unless ``again``)."""
    entries = InboxEntry.objects.filter(pk__in=list(entry_ids)).select_related("actor", "activity")
    if not again:
        entries = entries.filter(triggers_applied_at__isnull=True)
    index = trigger_index()
    count = 0
    for entry in entries.order_by("pk"):
        apply_triggers(entry, index)
        count += 1
    return count


def mark_applied(entry_ids: list[int]) -> None:
    InboxEntry.objects.filter(pk__in=entry_ids, triggers_applied_at__isnull=True).update(
        triggers_applied_at=timezone.now()
    )
