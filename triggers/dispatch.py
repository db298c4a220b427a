"""flow_dispatch: start a matched trigger's flow and record the Firing, exactly once.

The Firing row is claimed and the flow instance created in one transaction. A concurrent or
retried task that matched the same (actor, activity_cid, trigger_cid) blocks on the unique
index until the first commits, then finds the key taken and starts nothing; if the first
rolled back, the second goes ahead. A flow that is unknown or crashes is recorded on the
Firing, never raised, so the entry's other triggers still run.
"""

from __future__ import annotations

import logging

from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from fedsx import metrics
from fedsx.models import InboxEntry
from flows import status, store

from .models import Firing
from .registry import CompiledTrigger

logger = logging.getLogger(__name__)

# The store's outcomes a firing records as they are (one vocabulary: flows/status.py);
# anything else (a refusal, a non-deterministic start) is an error firing.
_OUTCOMES = {name: Firing.Outcome(name) for name in (status.DONE, status.SUSPENDED, status.CRASHED)}


def flow_input(trigger: CompiledTrigger, entry: InboxEntry) -> dict:
    """What the started flow receives."""
    return {
        "activity": entry.activity.payload,
        "actor": entry.activity.actor,
        "recipient": entry.actor.ap_id,
        "trigger": {"id": trigger.id, "cid": trigger.trigger_cid, "label": trigger.label},
    }


def flow_dispatch(trigger: CompiledTrigger, entry: InboxEntry) -> Firing | None:
    """Claim the firing and start the flow; None if this trigger already fired here."""
    # No savepoint of its own: inside apply_triggers' transaction a database error fails the
    # whole entry (the task retries); called alone, this is the transaction.
    with transaction.atomic(savepoint=False):
        firing = claim(trigger, entry)
        if firing is None:
            return None
        firing.outcome, firing.flow_instance_id, firing.detail = _start(
            trigger.flow_name, flow_input(trigger, entry)
        )
        firing.save(update_fields=["outcome", "flow_instance", "detail"])
    metrics.trigger_fired(firing.outcome)
    return firing


def record_guard_error(trigger: CompiledTrigger, entry: InboxEntry, error: str) -> Firing | None:
    """A guard that raised counts as failed; the error is kept as an error firing."""
    firing = claim(trigger, entry, outcome=Firing.Outcome.ERROR, detail=f"guard: {error}")
    if firing is not None:
        metrics.trigger_fired(firing.outcome)
    return firing


# The claim is one statement: a concurrent run holding the same key makes it wait until
# that run commits (then it inserts nothing) or rolls back (then it inserts). No savepoint
# is needed to survive losing the race, so the claim costs one round trip. It inserts only
# while the trigger row exists, is enabled and still has the spec this process matched:
# a trigger deleted, disabled or edited after this process built its index claims nothing
# (deleted, it would fail the whole batch on the foreign key at commit; disabled or
# edited, it would fire when it no longer should, or twice for one edit).
CLAIM_SQL = """
INSERT INTO triggers_firing
    (actor_id, activity_cid, trigger_cid, trigger_id, inbox_entry_id, outcome, detail,
     created_at)
SELECT %s, %s, %s, id, %s, %s, %s, %s FROM triggers_trigger
WHERE id = %s AND enabled AND trigger_cid = %s
ON CONFLICT (actor_id, activity_cid, trigger_cid) DO NOTHING
RETURNING id
"""


def claim(
    trigger: CompiledTrigger,
    entry: InboxEntry,
    outcome: str = Firing.Outcome.STARTED,
    detail: str = "",
) -> Firing | None:
    """Insert the Firing under its unique key; None if another run holds it, or the trigger
    is gone, disabled or edited since it was matched."""
    firing = Firing(
        actor_id=entry.actor_id,
        activity_cid=entry.activity.activity_cid,
        trigger_cid=trigger.trigger_cid,
        trigger_id=trigger.id,
        inbox_entry=entry,
        outcome=outcome,
        detail=detail,
        created_at=timezone.now(),
    )
    with connection.cursor() as cursor:
        cursor.execute(
            CLAIM_SQL,
            [
                firing.actor_id,
                firing.activity_cid,
                firing.trigger_cid,
                entry.pk,
                outcome,
                detail,
                firing.created_at,
                firing.trigger_id,
                firing.trigger_cid,
            ],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    firing.pk = row[0]
    firing._state.adding = False
    return firing


def _start(flow_name: str, input: dict) -> tuple[str, int | None, str]:
    """(outcome, flow instance id, detail) of starting the flow; never raises for the flow."""
    try:
        instance_id, outcome = store.start(flow_name, input)
    except DatabaseError:
        raise  # the database, not the flow: the task retries
    except Exception as exc:  # the store promises not to raise; if it does, it is data too
        logger.exception("flows.store.start(%r) raised", flow_name)
        return Firing.Outcome.ERROR, None, f"{type(exc).__name__}: {exc}"
    status = _OUTCOMES.get(outcome.status, Firing.Outcome.ERROR)
    return status, instance_id, _detail(outcome)


def _detail(outcome) -> str:
    if outcome.status == "suspended":
        return f"waiting on {outcome.tag!r}" if outcome.tag else ""
    parts = [p for p in (outcome.error, outcome.detail) if p]
    if outcome.status not in _OUTCOMES:
        parts.insert(0, outcome.status)
    return ": ".join(str(p) for p in parts)
