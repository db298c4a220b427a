"""What ``ctx.receive`` waits for: a declarative, indexable match on arriving activities.

A match is a JSON object with any of:

* ``type``: an activity type or a list of them (``["Accept", "Reject"]``);
* ``object``: the id of the activity's object, given by id or embedded (for an Accept,
  Reject or Undo: the id of the activity it answers);
* ``inReplyTo``: the id the activity's object (or the activity) replies to;
* ``actor``: the (verified) sender's id;
* ``recipient``: the id of the local actor whose inbox it reaches;
* ``guard``: an expression in the triggers' guard language over the activity JSON (plus
  ``actor`` and ``recipient``), compiled once, never evaluated as Python;
* ``since``: how far back (seconds) the look-back searches the inbox log for an answer
  that arrived before the wait was registered (default: since the instance started).

Each wait is filed under one *key*, its most selective field (object, then inReplyTo,
actor, recipient, and a single type last), so an arriving entry finds its waiters with one
indexed ``IN`` query over the keys it could answer; the full match is then checked here.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import orjson

from fedsx.vocab import id_of

FIELDS = ("type", "object", "inReplyTo", "actor", "recipient", "guard", "since")
MAX_ID_LENGTH = 500
KEY_ORDER = (("object", "object"), ("inReplyTo", "reply"), ("actor", "actor"))


class BadMatch(ValueError):
    """A match a flow (or an operator) wrote that cannot be used: says which field."""


@dataclass(frozen=True)
class Match:
    types: tuple[str, ...] = ()
    object: str = ""
    in_reply_to: str = ""
    actor: str = ""
    recipient: str = ""
    guard: str = ""
    since: float | None = None

    # ── parsing ──────────────────────────────────────────────────────────────────────

    @classmethod
    def parse(cls, spec: Any) -> Match:
        """A Match from its JSON form; ``BadMatch`` naming the field that is wrong."""
        if isinstance(spec, Match):
            return spec
        if not isinstance(spec, dict):
            raise BadMatch(f"a match is a JSON object, not {type(spec).__name__}")
        unknown = sorted(set(spec) - set(FIELDS))
        if unknown:
            raise BadMatch(f"unknown match field {unknown[0]!r} (known: {', '.join(FIELDS)})")
        match = cls(
            types=_types(spec.get("type")),
            object=_an_id(spec, "object"),
            in_reply_to=_an_id(spec, "inReplyTo"),
            actor=_an_id(spec, "actor"),
            recipient=_an_id(spec, "recipient"),
            guard=_guard(spec.get("guard")),
            since=_since(spec.get("since")),
        )
        selective = match.object or match.in_reply_to or match.actor or match.recipient
        if not selective and len(match.types) != 1:
            raise BadMatch("a match needs object, inReplyTo, actor or recipient, or a single type")
        return match

    def as_dict(self) -> dict[str, Any]:
        spec: dict[str, Any] = {}
        if self.types:
            spec["type"] = list(self.types) if len(self.types) > 1 else self.types[0]
        for field, value in (
            ("object", self.object),
            ("inReplyTo", self.in_reply_to),
            ("actor", self.actor),
            ("recipient", self.recipient),
            ("guard", self.guard),
        ):
            if value:
                spec[field] = value
        if self.since is not None:
            spec["since"] = self.since
        return spec

    @property
    def key(self) -> str:
        """The index key this wait is filed under (see the module docstring)."""
        if self.object:
            return f"object {self.object}"
        if self.in_reply_to:
            return f"reply {self.in_reply_to}"
        if self.actor:
            return f"actor {self.actor}"
        if self.recipient:
            return f"to {self.recipient}"
        return f"type {self.types[0]}"

    @property
    def tag(self) -> str:
        """The log tag of a receive on this match: readable, and different whenever the
        match is, so a deploy that changes what a flow waits for is caught on replay."""
        digest = hashlib.sha256(orjson.dumps(self.as_dict(), option=orjson.OPT_SORT_KEYS))
        kinds = "|".join(self.types) or "any"
        return f"receive {kinds[:150]} {digest.hexdigest()[:16]}"

    # ── matching ─────────────────────────────────────────────────────────────────────

    def matches(self, activity: dict[str, Any], sender: str, recipient: str) -> bool:
        """Does this activity (from the verified ``sender``, in ``recipient``'s inbox)
        answer the wait? A guard that fails to evaluate does not match."""
        if self.types and activity.get("type") not in self.types:
            return False
        if self.object and self.object not in object_ids(activity):
            return False
        if self.in_reply_to and self.in_reply_to not in replied_ids(activity):
            return False
        if self.actor and self.actor != sender:
            return False
        if self.recipient and self.recipient != recipient:
            return False
        if self.guard:
            from triggers.guards import compile_guard, guard_passes

            document = {**activity, "actor": sender, "recipient": recipient}
            passed, _ = guard_passes(compile_guard(self.guard), document)
            return passed
        return True


def object_ids(activity: dict[str, Any]) -> list[str]:
    """The ids an activity's object names: by id, or an embedded object's id."""
    value = activity.get("object")
    items = value if isinstance(value, list) else [value]
    return [ref for item in items[:20] if (ref := id_of(item))]


def replied_ids(activity: dict[str, Any]) -> list[str]:
    """What the activity, or the object it carries, is ``inReplyTo``."""
    found = [id_of(activity.get("inReplyTo"))]
    obj = activity.get("object")
    if isinstance(obj, dict):
        found.append(id_of(obj.get("inReplyTo")))
    return [ref for ref in found if ref]


def keys_of(activity: dict[str, Any], sender: str, recipient: str) -> list[str]:
    """Every key a wait this activity answers could be filed under."""
    keys = [f"object {ref}" for ref in object_ids(activity)]
    keys += [f"reply {ref}" for ref in replied_ids(activity)]
    keys += [f"actor {sender}", f"to {recipient}"]
    if isinstance(activity.get("type"), str):
        keys.append(f"type {activity['type']}")
    return [key[:600] for key in keys]


def _types(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    items = value if isinstance(value, list) else [value]
    if not items or not all(isinstance(item, str) and 0 < len(item) <= 64 for item in items):
        raise BadMatch("type is an activity type or a list of them")
    return tuple(dict.fromkeys(items))


def _an_id(spec: dict, field: str) -> str:
    value = spec.get(field)
    if value is None:
        return ""
    ref = id_of(value)
    if not ref or len(ref) > MAX_ID_LENGTH:
        raise BadMatch(f"{field} is an id (a string of at most {MAX_ID_LENGTH} characters)")
    return ref


def _guard(value: Any) -> str:
    if value is None or value == "":
        return ""
    if not isinstance(value, str):
        raise BadMatch("guard is an expression in the guard language (a string)")
    from triggers.guards import GuardSyntaxError, compile_guard

    try:
        compile_guard(value)
    except GuardSyntaxError as exc:
        raise BadMatch(f"guard: {exc}") from None
    return value.strip()


def _since(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 10**9:
        raise BadMatch("since is a number of seconds to look back")
    return float(value)
