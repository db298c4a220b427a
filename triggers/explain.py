"""Why a trigger would or would not fire for an activity: the verdicts ``test`` shows."""

from __future__ import annotations

from dataclasses import dataclass

from fedsx.models import Actor, host_of, local_users

from .guards import compile_guard, guard_passes
from .models import ANY_TYPE, Trigger
from .registry import CompiledTrigger


@dataclass
class Explanation:
    trigger: int
    recipient: str
    sender: str
    type_matches: bool
    actor_in_scope: bool
    sender_in_scope: bool
    guard_passes: bool
    guard_error: str | None
    enabled: bool

    @property
    def would_fire(self) -> bool:
        return (
            self.enabled
            and self.type_matches
            and self.actor_in_scope
            and self.sender_in_scope
            and self.guard_passes
        )


def sender_of(activity: dict) -> str:
    actor = activity.get("actor")
    if isinstance(actor, dict):
        actor = actor.get("id")
    return actor if isinstance(actor, str) else ""


def explain(trigger: Trigger, activity: dict, recipient: Actor) -> Explanation:
    """Every verdict of ``trigger`` for ``activity`` arriving in ``recipient``'s inbox."""
    sender = sender_of(activity)
    document = {**activity, "actor": sender, "recipient": recipient.ap_id}
    passed, error = guard_passes(compile_guard(trigger.guard), document)
    activity_type = activity.get("type")
    return Explanation(
        trigger=trigger.pk,
        recipient=recipient.username,
        sender=sender,
        type_matches=trigger.activity_type in (ANY_TYPE, activity_type),
        actor_in_scope=not trigger.actor_scope or recipient.username in trigger.actor_scope,
        sender_in_scope=CompiledTrigger.of(trigger).accepts_sender(sender, host_of(sender)),
        guard_passes=passed,
        guard_error=error,
        enabled=trigger.enabled,
    )


def recipient_for(trigger: Trigger, name: str | None = None) -> Actor | None:
    """The local actor a test delivers to: ``name``, else the trigger's first actor in
    scope, else the first local user (never the node's own actor)."""
    name = name or (trigger.actor_scope[0] if trigger.actor_scope else None)
    recipients = local_users()
    return (recipients.filter(username=name) if name else recipients).first()
