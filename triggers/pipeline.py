"""apply_triggers: what happens to a committed inbox entry.

First the flows waiting for an arriving activity: the instances whose ``ctx.receive`` the
entry answers are resumed (``flows.waits.answer_entries``). Then the triggers, as for any
entry: an activity that answers a wait and also matches a trigger does both. For one
entry (one activity in one local actor's inbox): look up the candidate triggers by
activity type and actor scope in the index, drop those whose sender scope or guard fails
(``guard_passes``), drop those already in the actor's ``triggers_fired`` for this activity,
and hand each of the rest to ``flow_dispatch``, which records one Firing each. Then mark the
entry applied, which takes it off the sweeper's list. Running it twice is harmless.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.db import DatabaseError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from fedsx.models import Activity, Actor, InboxEntry
from flows.waits import answer_entries

from .dispatch import flow_dispatch, record_guard_error
from .guards import guard_passes
from .models import Firing
from .registry import TriggerIndex, trigger_index

logger = logging.getLogger(__name__)

ENTRY_FIELDS = (
    "id",
    "seq",
    "actor_id",
    "activity_id",
    "triggers_applied_at",
    "actor__id",
    "actor__username",
    "actor__ap_id",
    "activity__id",
    "activity__type",
    "activity__actor",
    "activity__activity_cid",
    "activity__payload",
)

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


def apply_triggers(
    entry: InboxEntry,
    index: TriggerIndex | None = None,
    *,
    mark: bool = True,
    answer_waits: bool = True,
) -> list[Firing]:
    """Resume the waits this entry answers, then fire every matching trigger not yet fired
    for it; returns the new Firings.

    With ``mark`` (the default) the entry is also marked applied; apply_entries marks a
    whole batch at once, and answers the batch's waits with one query, instead.
    """
    index = index or trigger_index()
    activity, recipient = entry.activity, entry.actor
    verdicts = index.match(
        activity.type, recipient.username, activity.actor, guard_document(activity, recipient)
    )
    firings: list[Firing] = []
    # The entry's firings, their flow instances and the applied mark commit together. No
    # savepoint when nested in apply_entries' transaction: a database error fails the batch
    # and the task retries it whole, which the unique firing key makes harmless.
    with transaction.atomic(savepoint=False):
        if answer_waits:
            answer_entries([entry])
        # A trigger already in the actor's triggers_fired loses its claim on the unique
        # key, so no look-up of them comes first.
        for trigger, error in verdicts.errors:
            if firing := record_guard_error(trigger, entry, error):
                firings.append(firing)
        for trigger in verdicts.passed:
            if firing := flow_dispatch(trigger, entry):
                firings.append(firing)
        if mark:
            mark_applied([entry.pk])
    return firings


def apply_entries(entry_ids: Iterable[int], *, again: bool = False) -> int:
    """Apply triggers to these entries (skipping those already applied unless ``again``).

    One transaction for the batch: under load the courier sends many ids per task, and
    their entries then share one BEGIN, one COMMIT and one applied-mark UPDATE. If the batch
    fails with anything but a database error (which the task retries), the entries are
    applied again one by one, so one entry that cannot be applied does not hold back the
    others of its batch forever; that one is logged and left to the sweeper.
    """
    entry_ids = list(entry_ids)
    entries = entries_to_apply(entry_ids, again=again)
    try:
        with transaction.atomic():
            batch = list(entries)
            answer_entries(batch)
            for entry in batch:
                # The index per entry, not per batch: it is rechecked at most once a second,
                # so a long batch still sees a trigger edited or disabled meanwhile.
                apply_triggers(entry, trigger_index(), mark=False, answer_waits=False)
            mark_applied([entry.pk for entry in batch])
        return len(batch)
    except DatabaseError:
        raise
    except Exception:
        logger.warning("the batch of inbox entries %s failed; applying them one by one", entry_ids)
    return apply_one_by_one(entries)


def apply_one_by_one(
    entries: Iterable[InboxEntry], *, isolate_database_errors: bool = False
) -> int:
    """Apply each entry in its own transaction; one that raises is logged and skipped.

    A database error fails the whole call (the task retries it), unless
    ``isolate_database_errors``: then it too is logged and skipped, and raised only if no
    entry could be applied at all (the database, not an entry, is what fails).
    """
    applied, database_error = 0, None
    for entry in entries:
        try:
            with transaction.atomic():  # a savepoint when nested: the others still commit
                apply_triggers(entry, trigger_index())
        except DatabaseError as exc:
            if not isolate_database_errors:
                raise
            database_error = exc
            logger.exception(
                "applying triggers to inbox entry %s failed in the database; the sweeper will"
                " retry it",
                entry.pk,
            )
        except Exception:
            logger.exception(
                "applying triggers to inbox entry %s failed; the sweeper will retry it", entry.pk
            )
        else:
            applied += 1
    if database_error is not None and applied == 0:
        raise database_error
    return applied


def apply_entries_isolated(entry_ids: Iterable[int]) -> int:
    """Apply each of these entries on its own, database errors included: for a batch that
    kept failing, so that one entry the database refuses cannot hold back the others."""
    return apply_one_by_one(entries_to_apply(entry_ids), isolate_database_errors=True)


def entries_to_apply(entry_ids: Iterable[int], *, again: bool = False) -> QuerySet[InboxEntry]:
    """These entries in id order, not yet applied unless ``again``, with what matching and
    dispatch read (an actor row also carries documents and keys: those are left out)."""
    entries = (
        InboxEntry.objects.filter(pk__in=list(entry_ids))
        .select_related("actor", "activity")
        .only(*ENTRY_FIELDS)
        .order_by("pk")
    )
    return entries if again else entries.filter(triggers_applied_at__isnull=True)


def mark_applied(entry_ids: list[int]) -> None:
    InboxEntry.objects.filter(pk__in=entry_ids, triggers_applied_at__isnull=True).update(
        triggers_applied_at=timezone.now()
    )
