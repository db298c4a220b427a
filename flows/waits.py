"""Arrivals and timers: how suspended instances are found and resumed.

* ``answer_entries(entries)``: the triggers pipeline calls it first for each batch of
  committed inbox entries. One indexed query finds the instances whose receive is filed
  under a key the entries could answer (``flows.matching``); each candidate whose full
  match holds is resumed through ``store.receive_entry``, whose Receipt claim makes it
  exactly once.
* The look-back: a receive registered while its answer was already in the inbox log (a
  fast peer answered the Follow while the flow's transaction was still open) would never
  hear it. So registering a receive sets ``lookback_due``, and after the commit the
  instance's inbox log is searched since the instance started (or the match's ``since``
  window). Why after the commit: an entry that commits while the flow's transaction is
  open is invisible to that transaction, and the entry's own matching cannot see the
  uncommitted wait; after the commit, every entry is either committed already (the
  look-back finds it) or commits later (its matching finds the wait). Both may find it:
  the Receipt makes the second a no-op.
* Timers: ``wake_at`` is indexed; the ``wakeups`` job kind's sweep (celery beat, or the
  embedded node's ticker) hands out what is due, and ``store.wake`` fires each once.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from fedsx import jobs
from fedsx.conf import fedsx_settings
from fedsx.models import InboxEntry

from . import store
from .matching import Match, keys_of
from .models import FlowInstance, Receipt

logger = logging.getLogger("flows.waits")

WAKEUPS = "wakeups"  # the job kind
LOOKBACK_LIMIT = 500  # entries examined per look-back: the keyed query narrows it first
LOOKBACK_GRACE = timedelta(seconds=5)  # before the sweep redoes a look-back whose task was lost
SUSPENDED = FlowInstance.Status.SUSPENDED
ACTIVITY = FlowInstance.Waiting.ACTIVITY


def answer_entries(entries: list[InboxEntry]) -> int:
    """Resume the instances these entries answer; returns how many were resumed."""
    keyed = [
        (entry, keys_of(entry.activity.payload, entry.activity.actor, entry.actor.ap_id))
        for entry in entries
    ]
    wanted = {key for _, keys in keyed for key in keys}
    if not wanted:
        return 0
    waiting = list(
        FlowInstance.objects.filter(
            waiting_kind=ACTIVITY, status=SUSPENDED, match_key__in=wanted
        ).values_list("pk", "match_key", "waiting_match")
    )
    resumed = 0
    for entry, keys in keyed:
        for pk, key, spec in waiting:
            if key in keys and _answers(spec, entry):
                resumed += _deliver(pk, entry)
    return resumed


def _answers(spec: Match | dict, entry: InboxEntry) -> bool:
    try:
        return Match.parse(spec).matches(
            entry.activity.payload, entry.activity.actor, entry.actor.ap_id
        )
    except ValueError:  # a stored match the code no longer accepts: the flow's replay says
        return False


def _deliver(instance_id: int, entry: InboxEntry) -> int:
    outcome = store.receive_entry(
        instance_id,
        entry.pk,
        sender=entry.activity.actor,
        recipient=entry.actor.ap_id,
        activity=entry.activity.payload,
    )
    return 1 if outcome.ok else 0


# ── the look-back ─────────────────────────────────────────────────────────────────────


def lookback_after_commit(instance_id: int) -> None:
    jobs.after_commit(WAKEUPS, [instance_id])


def look_back(instance_id: int) -> bool:
    """Answer a freshly registered receive from the inbox log, if an answer is there;
    returns whether the instance was resumed."""
    with transaction.atomic():
        instance = FlowInstance.objects.select_for_update().filter(pk=instance_id).first()
        if instance is None or not instance.lookback_due:
            return False
        FlowInstance.objects.filter(pk=instance_id).update(lookback_due=False)
        if instance.status != SUSPENDED or instance.waiting_kind != ACTIVITY:
            return False
        entry = _earliest_answer(instance)
        return entry is not None and _deliver(instance_id, entry) == 1


def _earliest_answer(instance: FlowInstance) -> InboxEntry | None:
    spec = Match.parse(instance.waiting_match)
    since = instance.created_at
    if spec.since is not None:
        since = timezone.now() - timedelta(seconds=spec.since)
    candidates = (
        InboxEntry.objects.filter(created_at__gte=since)
        .filter(_narrowed(spec))
        .exclude(pk__in=Receipt.objects.filter(instance=instance).values("entry_id"))
        .select_related("activity", "actor")
        .order_by("pk")[:LOOKBACK_LIMIT]
    )
    return next((entry for entry in candidates if _answers(spec, entry)), None)


def _narrowed(spec: Match) -> Q:
    """The indexed condition the match's key stands for (the rest is checked in Python)."""
    if spec.object:
        return Q(activity__object_id=spec.object)
    if spec.actor:
        return Q(activity__actor=spec.actor)
    if spec.recipient:
        return Q(actor__ap_id=spec.recipient)
    if len(spec.types) == 1:
        return Q(activity__type=spec.types[0])
    return Q()  # inReplyTo alone: the time window bounds it


# ── the job kind: look-backs and timers ─────────────────────────────────────────────


def run(instance_ids: list[int]) -> int:
    """For each instance: its look-back if one is due (an answer that came first beats
    the deadline), then its timer if it is due and nothing answered."""
    done = 0
    now = timezone.now()
    rows = FlowInstance.objects.filter(pk__in=instance_ids).values_list(
        "pk", "lookback_due", "wake_at"
    )
    for pk, lookback_due, wake_at in sorted(rows):
        if lookback_due and look_back(pk):
            done += 1
        elif wake_at is not None and wake_at <= now:
            done += store.wake(pk, now=now).ok
    return done


def overdue() -> list[int]:
    """Timers due now, and look-backs whose after-commit task was lost."""
    now = timezone.now()
    limit = fedsx_settings.FLOW_WAKE_MAX
    due = (
        FlowInstance.objects.filter(wake_at__lte=now, status=SUSPENDED)
        .order_by("wake_at")
        .values_list("pk", flat=True)[:limit]
    )
    stale = FlowInstance.objects.filter(lookback_due=True, updated_at__lte=now - LOOKBACK_GRACE)
    return [*due, *stale.values_list("pk", flat=True)[:limit]]


def register() -> None:
    jobs.register(
        jobs.JobKind(
            name=WAKEUPS,
            task_name="flows.wake",
            run=run,
            overdue=overdue,
            sweep_interval=lambda: fedsx_settings.FLOW_TICK_SECONDS,
            max_ids_per_task=100,
        )
    )
