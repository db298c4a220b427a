"""The in-memory index of enabled triggers, so matching never scans them all.

Triggers are filed by activity type (or ``*``) and then by local actor (or ``*`` for all).
An activity for one recipient therefore looks in at most four buckets. Inside a bucket,
guards that require ``path == 'text'`` are filed under that path and text (a thousand of
them cost one dictionary look-up per distinct path), guards that require
``contains(path, 'text')`` under that path (one substring test each, no interpreter); only
the remaining guards are evaluated one by one, each distinct guard once per activity.

Each process keeps one index and rebuilds it when ``RegistryVersion`` moved, which every
trigger change bumps (signals and TriggerQuerySet.update, see triggers.models).
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from fedsx.models import host_of

from .guards import FAILED, PASSED, Guard, compile_guard, guard_passes
from .models import ANY_TYPE, RegistryVersion, Trigger

ALL_ACTORS = "*"


@dataclass(frozen=True, slots=True)
class CompiledTrigger:
    """What matching needs of a trigger, without touching the database."""

    id: int
    trigger_cid: str
    label: str
    flow_name: str
    guard: Guard
    senders: frozenset[str]

    @classmethod
    def of(cls, trigger: Trigger) -> CompiledTrigger:
        return cls(
            id=trigger.pk,
            trigger_cid=trigger.trigger_cid,
            label=trigger.label,
            flow_name=trigger.flow_name,
            guard=compile_guard(trigger.guard),
            senders=frozenset(s.lower() for s in trigger.sender_scope),
        )

    def accepts_sender(self, sender: str, sender_host: str) -> bool:
        """Any sender when unscoped; else the actor id, its domain or a parent domain."""
        if not self.senders:
            return True
        if sender.lower() in self.senders or sender_host in self.senders:
            return True
        parts = sender_host.split(".")
        return any(".".join(parts[i:]) in self.senders for i in range(1, len(parts)))


@dataclass
class Verdicts:
    """Which candidates passed their guard, and which guards raised (with the error)."""

    passed: list[CompiledTrigger] = field(default_factory=list)
    errors: list[tuple[CompiledTrigger, str]] = field(default_factory=list)


class Bucket:
    """The triggers of one (type, actor) pair, split by how cheaply their guards test."""

    def __init__(self) -> None:
        self.triggers: list[CompiledTrigger] = []
        self.unguarded: list[CompiledTrigger] = []
        # path -> text -> triggers whose guard requires path == 'text'
        self.by_equality: dict[tuple[str, ...], dict[str, list[CompiledTrigger]]] = {}
        # path -> [(text, triggers)] whose guard requires contains(path, 'text')
        self.by_contains: dict[tuple[str, ...], dict[str, list[CompiledTrigger]]] = {}
        # guard source -> (guard, its triggers): guards with nothing to look up
        self.evaluated: dict[str, tuple[Guard, list[CompiledTrigger]]] = {}

    def add(self, trigger: CompiledTrigger) -> None:
        self.triggers.append(trigger)
        guard = trigger.guard
        if not guard.source:
            self.unguarded.append(trigger)
        elif guard.conditions:
            kind, path, text = guard.conditions[0]
            filed = self.by_equality if kind == "eq" else self.by_contains
            filed.setdefault(path, {}).setdefault(text, []).append(trigger)
        else:
            self.evaluated.setdefault(guard.source, (guard, []))[1].append(trigger)

    def looked_up(self, document: dict) -> Iterable[tuple[CompiledTrigger, bool]]:
        """(trigger, settled) for each trigger whose filed condition holds for this document.

        ``settled``: the condition was the whole guard, so it passed. Otherwise the guard
        must still be evaluated; that includes a ``contains`` whose subject is neither text
        nor a list, where JMESPath raises and the error is recorded.
        """
        for path, by_text in self.by_equality.items():
            value = _at(document, path)
            if isinstance(value, str):
                for trigger in by_text.get(value, ()):
                    yield trigger, trigger.guard.exact
        for path, by_text in self.by_contains.items():
            subject = _at(document, path)
            if isinstance(subject, str | list):
                for text, triggers in by_text.items():
                    if text in subject:
                        for trigger in triggers:
                            yield trigger, trigger.guard.exact
            else:
                for triggers in by_text.values():
                    for trigger in triggers:
                        yield trigger, False


def _at(document: dict, path: tuple[str, ...]):
    value = document
    for name in path:
        value = value.get(name) if isinstance(value, dict) else None
    return value


class TriggerIndex:
    """Enabled triggers by activity type, then local actor username."""

    def __init__(self, triggers: Iterable[Trigger], version: int = 0):
        self.version = version
        self.size = 0
        self._buckets: dict[str, dict[str, Bucket]] = defaultdict(dict)
        for trigger in triggers:
            compiled = CompiledTrigger.of(trigger)
            for actor in trigger.actor_scope or [ALL_ACTORS]:
                self._buckets[trigger.activity_type].setdefault(actor, Bucket()).add(compiled)
            self.size += 1

    @classmethod
    def load(cls) -> TriggerIndex:
        version = RegistryVersion.current()
        return cls(Trigger.objects.filter(enabled=True).order_by("id"), version)

    def buckets(self, activity_type: str, recipient: str) -> list[Bucket]:
        found = []
        for type_key in (activity_type, ANY_TYPE) if activity_type != ANY_TYPE else (ANY_TYPE,):
            by_actor = self._buckets.get(type_key)
            if by_actor:
                for actor_key in (recipient, ALL_ACTORS):
                    bucket = by_actor.get(actor_key)
                    if bucket is not None:
                        found.append(bucket)
        return found

    def candidates(self, activity_type: str, recipient: str, sender: str) -> list[CompiledTrigger]:
        """Triggers whose type, actor scope and sender scope match (guards not yet tested)."""
        host = host_of(sender)
        return [
            trigger
            for bucket in self.buckets(activity_type, recipient)
            for trigger in bucket.triggers
            if trigger.accepts_sender(sender, host)
        ]

    def match(self, activity_type: str, recipient: str, sender: str, document: dict) -> Verdicts:
        """Triggers that pass type, scope and guard for one activity and one recipient."""
        verdicts = Verdicts()
        host = host_of(sender)
        seen: dict[str, tuple[bool, str | None]] = {}  # guard source -> verdict, once each

        def verdict_of(guard: Guard) -> tuple[bool, str | None]:
            verdict = seen.get(guard.source)
            if verdict is None:
                verdict = seen[guard.source] = guard_passes(guard, document)
            return verdict

        def keep(trigger: CompiledTrigger, verdict: tuple[bool, str | None]) -> None:
            if trigger.senders and not trigger.accepts_sender(sender, host):
                return
            if verdict[0]:
                verdicts.passed.append(trigger)
            elif verdict[1] is not None:
                verdicts.errors.append((trigger, verdict[1]))

        for bucket in self.buckets(activity_type, recipient):
            for trigger in bucket.unguarded:
                keep(trigger, PASSED)
            for trigger, settled in bucket.looked_up(document):
                keep(trigger, PASSED if settled else verdict_of(trigger.guard))
            for guard, triggers in bucket.evaluated.values():
                verdict = verdict_of(guard)
                if verdict is not FAILED:
                    for trigger in triggers:
                        keep(trigger, verdict)
        return verdicts


# How long a process trusts its index without asking the database for the registry
# version: a trigger edited elsewhere applies in other processes within this time (in the
# editing process at once), and a busy worker spares a query per task.
VERSION_CHECK_SECONDS = 1.0

_current: TriggerIndex | None = None
_checked_at = float("-inf")
_lock = threading.Lock()


def trigger_index() -> TriggerIndex:
    """This process's index, rebuilt if any trigger changed since it was built."""
    global _current, _checked_at
    index = _current
    if index is not None and time.monotonic() - _checked_at < VERSION_CHECK_SECONDS:
        return index
    version = RegistryVersion.current()
    if index is None or index.version != version:
        with _lock:
            if _current is None or _current.version != version:
                _current = TriggerIndex(Trigger.objects.filter(enabled=True), version)
            index = _current
    _checked_at = time.monotonic()
    return index


def forget_index() -> None:
    """Make the next trigger_index() ask the database (a trigger changed in this process)."""
    global _checked_at
    _checked_at = float("-inf")
