"""The durable store: flow instances and their replay logs in the database.

Every function here returns errors as values (an :class:`Outcome` with ``error`` set) and
never lets a flow's exception or bad input escape. Each works inside a caller's
``transaction.atomic()`` block: it uses savepoints, never commits on its own, and leaves
the outer transaction usable after a flow crashes.

A resume costs one row lock, one SELECT of the log (kind, tag and value in seq order,
decoded in one call on Postgres), one INSERT of the new rows and one UPDATE of the instance.
Side effects of steps run inside the transaction, each in its own savepoint: a step that
fails rolls back only its own writes, and a step's effects commit together with the log
row that records them.
"""

from __future__ import annotations

import traceback
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import orjson
from django.db import DatabaseError, IntegrityError, OperationalError, connection, transaction
from django.db.models import Count, QuerySet
from django.utils import timezone

from fedsx import metrics

from .engine import (
    ACTIVITY,
    OPERATOR,
    RECEIVE,
    SLEEP,
    TIMEOUT,
    TIMER,
    WAIT,
    Blocked,
    Crashed,
    Done,
    Entry,
    Nondeterministic,
    Result,
    Suspended,
    describe,
    drive,
)
from .models import FlowInstance, FlowLogEntry, Receipt, is_instance_id
from .registry import register_flow, registered_flows, registration, resolve_flow
from .values import NotJSON, check_json

__all__ = [
    "Outcome",
    "ReplayCheck",
    "cancel",
    "check_replay",
    "instances",
    "register_flow",
    "registered_flows",
    "resolve_flow",
    "resume",
    "retry",
    "start",
    "status",
    "wake",
]

Status = FlowInstance.Status
MAX_ID = 2**63 - 1
LOCK_NOT_AVAILABLE = "55P03"  # Postgres SQLSTATE for SELECT … FOR UPDATE NOWAIT


@dataclass(frozen=True)
class Outcome:
    """What a store call did, or why it did nothing.

    ``status`` is the instance's status after the call, or ``error`` when the call was
    refused (the names: flows/status.py). ``error`` is a
    stable code, ``detail`` a sentence for people.
    """

    status: str
    value: Any = None
    tag: str | None = None
    error: str | None = None
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.error is None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _refused(error: str, detail: str) -> Outcome:
    return Outcome(status="error", error=error, detail=detail)


def outcome_of(instance: FlowInstance) -> Outcome:
    """The outcome an instance's stored state stands for."""
    match instance.status:
        case Status.DONE:
            return Outcome(status="done", value=instance.result, detail="done")
        case Status.SUSPENDED:
            tag = instance.waiting_tag
            return Outcome(status="suspended", tag=tag, detail=waiting_for(instance))
        case Status.CRASHED:
            return Outcome("crashed", error="flow_crashed", detail=_first_line(instance.error))
        case Status.NONDETERMINISTIC:
            detail = _first_line(instance.error)
            return Outcome("nondeterministic", error="nondeterministic", detail=detail)
        case _:
            return Outcome(status=str(instance.status), detail=str(instance.status))


def waiting_counts() -> dict[str, int]:
    """Suspended instances by what they wait for (every kind, 0 when none): one grouped
    count on the partial index of suspended instances (for /metrics and the dashboard)."""
    counts = dict(
        FlowInstance.objects.filter(status=FlowInstance.Status.SUSPENDED)
        .order_by()
        .values_list("waiting_kind")
        .annotate(n=Count("pk"))
    )
    return {kind: counts.get(kind, 0) for kind in FlowInstance.Waiting.values}


def waiting_for(instance: FlowInstance) -> str:
    """What a suspended instance waits for, in a sentence for people."""
    when = instance.wake_at.isoformat(timespec="seconds") if instance.wake_at else None
    match instance.waiting_kind:
        case FlowInstance.Waiting.TIMER:
            return f"sleeping until {when}"
        case FlowInstance.Waiting.ACTIVITY:
            what = json_text(instance.waiting_match)
            return f"waiting for an activity {what}" + (f" until {when}" if when else "")
    return f"waiting on {instance.waiting_tag!r}"


def time_left(instance: FlowInstance) -> str:
    """`` (N s left)`` or `` (due)`` for an instance with a deadline, else nothing."""
    if instance.wake_at is None:
        return ""
    left = (instance.wake_at - timezone.now()).total_seconds()
    return f" ({left:.0f} s left)" if left > 0 else " (due)"


def json_text(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def _first_line(text: str) -> str:
    return text.strip().split("\n", 1)[0]


# ── reading ─────────────────────────────────────────────────────────────────────────


def _as_id(value: Any) -> int | None:
    if isinstance(value, str) and is_instance_id(value.strip()):
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_ID:
        return value
    return None


def _no_such_instance(instance_id: Any) -> Outcome:
    return _refused("no_such_instance", f"there is no flow instance {instance_id!r}")


# On Postgres the log comes back as one JSON array decoded in one orjson call: per-row
# JSONField decoding through the ORM cost several times more at 1,000+ entries.
_LOG_AS_ONE_ARRAY = (
    "SELECT json_agg(json_build_array(kind, tag, value) ORDER BY seq)::text"
    " FROM flows_flowlogentry WHERE instance_id = %s"
)


def _read_log(instance: FlowInstance) -> list[Sequence[Any]]:
    """The whole log as (kind, tag, value) in seq order: one query, no model objects."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(_LOG_AS_ONE_ARRAY, [instance.pk])
            (text,) = cursor.fetchone()
        return orjson.loads(text) if text else []
    rows = FlowLogEntry.objects.filter(instance_id=instance.pk).order_by("seq")
    return list(rows.values_list("kind", "tag", "value"))


def status(instance_id: int) -> Outcome:
    """Where an instance stands; ``no_such_instance`` if there is none."""
    pk = _as_id(instance_id)
    instance = FlowInstance.objects.filter(pk=pk).first() if pk else None
    return outcome_of(instance) if instance else _no_such_instance(instance_id)


def instances(
    flow: str | None = None,
    status: str | None = None,
    tag: str | None = None,
    waiting: str | None = None,
) -> QuerySet[FlowInstance]:
    """Instances, newest first, optionally of one flow, in one status, waiting on a tag or
    for one kind of thing (operator, activity, timer)."""
    found = FlowInstance.objects.all()
    if waiting is not None:
        found = found.filter(status=Status.SUSPENDED, waiting_kind=waiting)
    if flow is not None:
        found = found.filter(flow_name=flow)
    if status is not None:
        found = found.filter(status=status)
    if tag is not None:
        found = found.filter(waiting_tag=tag)
    return found.order_by("-id")


# ── driving ─────────────────────────────────────────────────────────────────────────


def _in_savepoint(fn, *args):
    # A step that fails must not leave the caller's transaction aborted.
    with transaction.atomic():
        result = fn(*args)
        _check_deferred_constraints()
        return result


def _check_deferred_constraints() -> None:
    """Check the rows written so far against their foreign keys now, not at commit.

    Django's foreign keys on Postgres are deferred to the commit. A flow that wrote a row
    referring to nothing then failed the commit of the whole transaction it ran in (a batch
    of inbox entries), on every retry; checked here, inside the step's or the flow's
    savepoint, it is that flow's crash.
    """
    if connection.vendor == "postgresql":
        connection.check_constraints()


def _drive(instance: FlowInstance, fn, log: list) -> Result:
    try:
        with transaction.atomic():
            result = drive(
                fn, instance.input, log, instance_id=instance.pk, run_effect=_in_savepoint
            )
            _check_deferred_constraints()
            return result
    except DatabaseError as exc:
        # The flow body ran a failing query outside any step: its writes are rolled back
        # with the savepoint, so no entry is recorded either.
        error = f"{type(exc).__name__} in the flow body: {_first_line(str(exc))}"
        return Crashed(error, "".join(traceback.format_exception(exc)))


def _record(instance: FlowInstance, result: Result, before: tuple[Entry, ...] = ()) -> None:
    """Append ``before`` and the drive's entries to the log and store the outcome."""
    entries = (*before, *result.entries)
    if before:  # the answer to the wait it was suspended on
        metrics.flow_resumed(instance.flow_name, before[-1].kind)
    start = instance.log_length
    FlowLogEntry.objects.bulk_create(
        FlowLogEntry(instance_id=instance.pk, seq=start + i, kind=e.kind, tag=e.tag, value=e.value)
        for i, e in enumerate(entries)
    )
    instance.log_length = start + len(entries)
    _clear_wait(instance)
    instance.result = None
    instance.error = ""
    match result:
        case Done(value=value):
            instance.status, instance.result = Status.DONE, value
        case Suspended(tag=tag):
            instance.status, instance.waiting_tag = Status.SUSPENDED, tag
            _register_wait(instance, result)
        case Crashed():
            instance.status = Status.CRASHED
            metrics.flow_crashed(instance.flow_name)
            instance.error = f"{result.error}\n\n{result.traceback}".strip()
        case Nondeterministic():
            instance.status, instance.error = Status.NONDETERMINISTIC, result.detail
        case _:  # pragma: no cover - live drives never block
            raise AssertionError(f"unexpected drive result {result!r}")
    instance.save(update_fields=["log_length", "status", "result", "error", *WAIT_FIELDS])
    if instance.lookback_due:
        # After the commit, not now: an answer committed while this transaction is open is
        # invisible to it, and its own arrival could not see this wait yet (flows.waits).
        from .waits import lookback_after_commit

        lookback_after_commit(instance.pk)


WAIT_FIELDS = (
    "waiting_tag",
    "waiting_kind",
    "waiting_match",
    "match_key",
    "wake_at",
    "lookback_due",
    "updated_at",
)


def _clear_wait(instance: FlowInstance) -> None:
    instance.waiting_tag = instance.waiting_kind = instance.match_key = ""
    instance.waiting_match = instance.wake_at = None
    instance.lookback_due = False


def _register_wait(instance: FlowInstance, result: Suspended) -> None:
    from .matching import Match

    instance.waiting_kind = result.waiting or OPERATOR
    instance.wake_at = result.wake_at
    if result.waiting == ACTIVITY:
        spec = Match.parse(result.match)
        instance.waiting_match, instance.match_key = spec.as_dict(), spec.key
        instance.lookback_due = True


class _Busy(Exception):
    """Another transaction holds the instance's row lock."""


def _locked(pk: int, *, nowait: bool) -> FlowInstance | None:
    try:
        return FlowInstance.objects.select_for_update(nowait=nowait).filter(pk=pk).first()
    except OperationalError as exc:
        if getattr(exc.__cause__, "sqlstate", None) == LOCK_NOT_AVAILABLE:
            raise _Busy from exc
        raise


def _not_running(instance: FlowInstance) -> Outcome | None:
    """Why an instance in its current state cannot be resumed or retried, if it cannot."""
    pk = instance.pk
    match instance.status:
        case Status.DONE:
            return _refused("already_done", f"instance {pk} is already done")
        case Status.CANCELLED:
            return _refused("already_cancelled", f"instance {pk} was cancelled")
    if registration(instance.flow_name) is None:
        return _refused(
            "no_such_flow", f"flow {instance.flow_name!r} of instance {pk} is not registered"
        )
    return None


# ── the operations ──────────────────────────────────────────────────────────────────


def start(name: str, input: dict) -> tuple[int | None, Outcome]:
    """Create an instance of flow ``name`` and drive it until it is done or waits.

    Returns the new instance's id (None when nothing was created) and the outcome; a flow
    that raises leaves a ``crashed`` instance and the outcome ``flow_crashed``.
    """
    flow = registration(name)
    if flow is None:
        return None, _refused("no_such_flow", f"no flow is registered as {name!r}")
    if not isinstance(input, dict):
        return None, _refused(
            "not_json", f"the input must be a JSON object, not a {type(input).__name__}"
        )
    try:
        check_json(input, "the input")
    except NotJSON as exc:
        return None, _refused("not_json", str(exc))
    # No savepoint of its own when nested: only a database error can escape from here (a
    # flow's own failures are caught in _drive's savepoint), and that fails the caller's
    # transaction anyway. It spares two round trips per start, the hot path of triggers.
    with transaction.atomic(savepoint=False):
        instance = FlowInstance.objects.create(
            flow_name=name, code_hash=flow.code_hash, input=input, status=Status.RUNNING
        )
        metrics.flow_started(name)
        _record(instance, _drive(instance, flow.fn, []))
    return instance.pk, outcome_of(instance)


def resume(
    instance_id: int, value: Any, *, tag: str | None = None, at: int | None = None
) -> Outcome:
    """Answer the wait an instance is suspended on with ``value`` and drive it on.

    The instance's row is locked without waiting: of two concurrent resumes one applies and
    the other gets ``already_resumed``. ``tag`` and ``at`` (the log length the caller saw)
    make sure the answer goes to the wait it was meant for: a page resumed twice, or one
    left open while the instance moved on, gets ``moved_on`` instead of answering the next
    wait.
    """
    pk = _as_id(instance_id)
    if pk is None:
        return _no_such_instance(instance_id)
    try:
        check_json(value, "the value")
    except NotJSON as exc:
        return _refused("not_json", str(exc))
    try:
        with transaction.atomic():
            instance = _locked(pk, nowait=True)
            if instance is None:
                return _no_such_instance(instance_id)
            refusal = _not_running(instance)
            if refusal is None and instance.status != Status.SUSPENDED:
                refusal = _refused(
                    "not_suspended",
                    f"instance {pk} is {instance.status}, not waiting: retry or cancel it",
                )
            if refusal is None and instance.waiting_kind not in ("", OPERATOR):
                refusal = _refused(
                    "not_waiting_for_operator",
                    f"instance {pk} is {waiting_for(instance)}, not on an operator"
                    + (": wake it to fire its timer" if instance.wake_at else ""),
                )
            if refusal is None:
                refusal = _moved_on(instance, tag, at)
            if refusal is not None:
                return refusal
            answer = Entry(WAIT, instance.waiting_tag, value)
            fn = registration(instance.flow_name).fn
            _record(instance, _drive(instance, fn, [*_read_log(instance), answer]), (answer,))
            return outcome_of(instance)
    except _Busy:
        return _refused("already_resumed", f"instance {pk} is being resumed by another caller")


def _moved_on(instance: FlowInstance, tag: str | None, at: int | None) -> Outcome | None:
    if tag is not None and tag != instance.waiting_tag:
        return _refused(
            "moved_on",
            f"instance {instance.pk} waits on {instance.waiting_tag!r}, not on {tag!r}",
        )
    if at is not None and at != instance.log_length:
        return _refused(
            "moved_on",
            f"instance {instance.pk} has moved on since (its log has {instance.log_length}"
            f" entries, not {at}): look at it again before answering",
        )
    return None


def retry(instance_id: int) -> Outcome:
    """Drive a crashed (or non-deterministic) instance again from its log.

    Failed steps are not replayed: they run again. Steps that succeeded before do not.
    """
    pk = _as_id(instance_id)
    if pk is None:
        return _no_such_instance(instance_id)
    try:
        with transaction.atomic():
            instance = _locked(pk, nowait=True)
            if instance is None:
                return _no_such_instance(instance_id)
            refusal = _not_running(instance)
            if refusal is None and instance.status not in (
                Status.CRASHED,
                Status.NONDETERMINISTIC,
            ):
                refusal = _refused(
                    "not_retryable",
                    f"instance {pk} is {instance.status}: only crashed or "
                    "non-deterministic instances are retried",
                )
            if refusal is not None:
                return refusal
            fn = registration(instance.flow_name).fn
            _record(instance, _drive(instance, fn, _read_log(instance)))
            return outcome_of(instance)
    except _Busy:
        return _refused("already_resumed", f"instance {pk} is being driven by another caller")


def cancel(instance_id: int) -> Outcome:
    """Stop an instance that is not done; its log is kept."""
    pk = _as_id(instance_id)
    if pk is None:
        return _no_such_instance(instance_id)
    with transaction.atomic():
        instance = _locked(pk, nowait=False)
        if instance is None:
            return _no_such_instance(instance_id)
        if instance.status == Status.DONE:
            return _refused("already_done", f"instance {pk} is already done")
        if instance.status == Status.CANCELLED:
            return _refused("already_cancelled", f"instance {pk} was already cancelled")
        instance.status = Status.CANCELLED
        _clear_wait(instance)
        instance.save(update_fields=["status", *WAIT_FIELDS])
    return outcome_of(instance)


def _answer(instance: FlowInstance, answer: Entry) -> Outcome:
    fn = registration(instance.flow_name).fn
    _record(instance, _drive(instance, fn, [*_read_log(instance), answer]), (answer,))
    return outcome_of(instance)


def receive_entry(
    instance_id: int, entry_id: int, *, sender: str, recipient: str, activity: dict
) -> Outcome:
    """Resume an instance whose receive this inbox entry answers, exactly once.

    The instance's row is locked (waiting: concurrent arrivals for one wait take turns);
    the second finds the wait answered, or its match no longer met, and does nothing. The
    ``Receipt`` row is the claim: an entry answers an instance at most once, whether it
    comes from the pipeline, the look-back, a retried task or a repeat delivery.
    """
    from .matching import Match

    with transaction.atomic():
        instance = _locked(instance_id, nowait=False)
        if instance is None:
            return _no_such_instance(instance_id)
        refusal = _not_running(instance)
        if refusal is not None:
            return refusal
        waiting = instance.status == Status.SUSPENDED and instance.waiting_kind == ACTIVITY
        if not waiting or not Match.parse(instance.waiting_match).matches(
            activity, sender, recipient
        ):
            return _refused("not_waiting", f"instance {instance.pk} does not wait for this")
        try:
            with transaction.atomic():
                Receipt.objects.create(instance=instance, entry_id=entry_id)
        except IntegrityError:
            return _refused("already_received", f"entry {entry_id} already answered {instance.pk}")
        value = {"activity": activity, "entry": entry_id, "actor": sender, "recipient": recipient}
        return _answer(instance, Entry(RECEIVE, instance.waiting_tag, value))


def wake(instance_id: int, *, now: datetime | None = None, early: bool = False) -> Outcome:
    """Fire an instance's timer: a sleep ends, a receive times out (``None`` to the flow).

    Only when it is due (``early`` fires it now: ``flows wake``); under the row lock, so a
    timer fires once however many ticks or workers reach it.
    """
    pk = _as_id(instance_id)
    if pk is None:
        return _no_such_instance(instance_id)
    now = now or timezone.now()
    try:
        with transaction.atomic():
            instance = _locked(pk, nowait=not early)
            if instance is None:
                return _no_such_instance(instance_id)
            refusal = _not_running(instance)
            if refusal is None and (instance.status != Status.SUSPENDED or not instance.wake_at):
                refusal = _refused(
                    "not_sleeping", f"instance {pk} has no timer to fire ({_state_of(instance)})"
                )
            if refusal is None and not early and instance.wake_at > now:
                refusal = _refused("not_due", f"instance {pk} is due at {instance.wake_at}")
            if refusal is not None:
                return refusal
            due, at = instance.wake_at.isoformat(), now.isoformat()
            kind = SLEEP if instance.waiting_kind == TIMER else TIMEOUT
            answer = Entry(kind, instance.waiting_tag, {"due": due, "woke": at})
            return _answer(instance, answer)
    except _Busy:
        return _refused("already_resumed", f"instance {pk} is being driven by another caller")


def _state_of(instance: FlowInstance) -> str:
    if instance.status == Status.SUSPENDED:
        return waiting_for(instance)
    return str(instance.status)


# ── checking a deploy ───────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class ReplayCheck:
    """Whether a suspended instance still replays against the code now registered."""

    instance_id: int
    flow_name: str
    ok: bool
    detail: str


def _replay_verdict(instance: FlowInstance) -> tuple[bool, str]:
    flow = registration(instance.flow_name)
    if flow is None:
        return False, f"flow {instance.flow_name!r} is no longer registered"
    waiting = describe(WAIT, instance.waiting_tag)
    result = drive(
        flow.fn, instance.input, _read_log(instance), instance_id=instance.pk, live=False
    )
    match result:
        case Suspended(tag=tag) if tag == instance.waiting_tag:
            return True, f"replays to {waiting}"
        case Suspended(tag=tag):
            return False, f"after the log the flow now waits on {tag!r}, not {waiting}"
        case Blocked(kind=kind, tag=tag):
            asked = describe(kind, tag)
            return False, f"after the log the flow now asks for {asked}, not {waiting}"
        case Done():
            return False, f"the flow now finishes without {waiting}"
        case Crashed(error=error):
            return False, f"the replay crashes: {error}"
        case Nondeterministic():
            return False, result.detail


def check_replay(flow: str | None = None) -> list[ReplayCheck]:
    """Re-drive every suspended instance's log against the current code, writing nothing.

    Run it before a deploy: an instance that is not ``ok`` would turn non-deterministic at
    its next resume.
    """
    checks = []
    for instance in instances(flow=flow, status=Status.SUSPENDED).order_by("id"):
        try:
            with transaction.atomic():
                ok, detail = _replay_verdict(instance)
                transaction.set_rollback(True)  # a flow body that writes must not write here
        except DatabaseError as exc:
            ok, detail = False, f"the replay failed in the database: {_first_line(str(exc))}"
        checks.append(ReplayCheck(instance.pk, instance.flow_name, ok, detail))
    return checks
