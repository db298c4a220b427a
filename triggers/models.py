"""The trigger registry and its audit trail.

A ``Trigger`` says "when an activity of this type reaches one of these local actors, from
one of these senders, and its guard holds, start this flow". Its ``trigger_cid`` is the
content id of exactly that spec, so editing the spec makes a new trigger (which may fire
again for old activities) while renaming the label does not.

A ``Firing`` records one trigger fired for one activity in one local actor's inbox: the
actor's ``triggers_fired``. Its unique key (actor, activity_cid, trigger_cid) is what makes
firing exactly-once under retried and concurrent tasks.
"""

from __future__ import annotations

import secrets

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import models, transaction
from django.utils import timezone

from fedsx.cid import json_cid
from fedsx.models import Activity, Actor, InboxEntry
from flows.status import FiringOutcome

from .guards import GuardSyntaxError, compile_guard

ANY_TYPE = "*"


def normalise_scope(values) -> list[str]:
    """A scope as stored: stripped, without blanks or repeats, sorted (so order is no spec)."""
    if values is None:
        return []
    if isinstance(values, str):
        values = values.replace(",", "\n").splitlines()
    if not isinstance(values, list | tuple | set):
        raise ValidationError("a scope is a list of names")
    cleaned = set()
    for value in values:
        if not isinstance(value, str):
            raise ValidationError(f"scope entries are strings, not {value!r}")
        if value.strip():
            cleaned.add(value.strip())
    return sorted(cleaned)


def trigger_spec(
    activity_type: str, guard: str, actor_scope: list[str], sender_scope: list[str], flow: str
) -> dict:
    """What a trigger *is* (its label and switches are not part of it)."""
    return {
        "type": activity_type,
        "guard": guard,
        "actors": actor_scope,
        "senders": sender_scope,
        "flow": flow,
    }


class TriggerQuerySet(models.QuerySet):
    """Bulk writes skip ``save()`` and its signals, so they bump the registry version here."""

    def update(self, **kwargs) -> int:
        changed = super().update(**kwargs)
        if changed:
            RegistryVersion.bump()
        return changed

    def bulk_create(self, objs, *args, **kwargs):
        created = super().bulk_create(objs, *args, **kwargs)
        if created:
            RegistryVersion.bump()
        return created


class Trigger(models.Model):
    label = models.CharField(max_length=200, blank=True)
    activity_type = models.CharField(
        max_length=64, db_index=True, help_text="An activity type such as Follow, or * for any."
    )
    actor_scope = models.JSONField(
        default=list,
        blank=True,
        help_text="Usernames of the local actors whose inboxes it watches; all when empty.",
    )
    sender_scope = models.JSONField(
        default=list,
        blank=True,
        help_text="Remote actor ids or domains it accepts activities from; any when empty.",
    )
    guard = models.TextField(
        blank=True,
        help_text="A JMESPath expression over the activity (with actor and recipient ids); "
        "the trigger fires when it is true. Empty: always.",
    )
    flow_name = models.CharField(max_length=200)
    enabled = models.BooleanField(default=True, db_index=True)
    trigger_cid = models.CharField(max_length=100, unique=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TriggerQuerySet.as_manager()

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.label or f"{self.activity_type} → {self.flow_name}"

    def save(self, *args, **kwargs) -> None:
        self.trigger_cid = json_cid(self.spec)
        super().save(*args, **kwargs)  # post_save bumps the registry version

    def switch(self, enabled: bool) -> None:
        """Enable or disable it; only a change is written (and bumps the registry version)."""
        if self.enabled != enabled:
            self.enabled = enabled
            self.save(update_fields=["enabled", "updated_at"])

    @property
    def spec(self) -> dict:
        return trigger_spec(
            self.activity_type, self.guard, self.actor_scope, self.sender_scope, self.flow_name
        )

    def clean(self) -> None:
        self.activity_type = (self.activity_type or "").strip()
        self.flow_name = (self.flow_name or "").strip()
        self.guard = (self.guard or "").strip()
        self.actor_scope = normalise_scope(self.actor_scope)
        self.sender_scope = normalise_scope(self.sender_scope)
        errors = {}
        if not self.activity_type or any(c.isspace() for c in self.activity_type):
            errors["activity_type"] = "give one activity type such as Follow, or *"
        if not self.flow_name:
            errors["flow_name"] = "give the name of the flow to start"
        try:
            compile_guard(self.guard)
        except GuardSyntaxError as exc:
            errors["guard"] = str(exc)
        unknown = set(self.actor_scope) - set(
            Actor.objects.filter(is_local=True, username__in=self.actor_scope).values_list(
                "username", flat=True
            )
        )
        if unknown:
            errors["actor_scope"] = f"no local actor named {', '.join(sorted(unknown))}"
        self.trigger_cid = json_cid(self.spec)
        if Trigger.objects.filter(trigger_cid=self.trigger_cid).exclude(pk=self.pk).exists():
            errors[NON_FIELD_ERRORS] = "a trigger with exactly this spec exists already"
        if errors:
            raise ValidationError(errors)


class RegistryVersion(models.Model):
    """One row whose version changes whenever a trigger changes.

    Every process keeps its trigger index in memory and rebuilds it when this version changed:
    one primary-key read per task instead of loading every trigger.
    """

    version = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"trigger registry version {self.version}"

    @classmethod
    def current(cls) -> int:
        value = cls.objects.filter(pk=1).values_list("version", flat=True).first()
        return value if value is not None else 0

    @classmethod
    def bump(cls) -> None:
        # A random value rather than +1: a counter restarting (a restored or flushed
        # database) could meet an old index's number again; a random one will not.
        version = secrets.randbits(62) + 1
        if not cls.objects.filter(pk=1).update(version=version):
            cls.objects.update_or_create(pk=1, defaults={"version": version})
        from .registry import forget_index  # this process sees its own change at once

        forget_index()
        # Inside a transaction, other threads of this process may rebuild the index from
        # the committed (old) triggers meanwhile; forget it again once the change is visible.
        transaction.on_commit(forget_index)


def registry_changed(sender, **kwargs) -> None:
    """post_save / post_delete receiver for Trigger.

    Signals, not ``save()``/``delete()`` overrides: a queryset delete (the admin's "delete
    selected") calls neither method but sends post_delete for every row it deletes.
    """
    RegistryVersion.bump()


class Firing(models.Model):
    """One trigger fired for one activity in one local actor's inbox."""

    Outcome = FiringOutcome  # flows/status.py: the one vocabulary

    actor = models.ForeignKey(Actor, on_delete=models.CASCADE, related_name="triggers_fired")
    activity_cid = models.CharField(max_length=100, db_index=True)
    trigger_cid = models.CharField(max_length=100, db_index=True)
    trigger = models.ForeignKey(
        Trigger, null=True, blank=True, on_delete=models.SET_NULL, related_name="firings"
    )
    inbox_entry = models.ForeignKey(
        InboxEntry, null=True, blank=True, on_delete=models.SET_NULL, related_name="firings"
    )
    outcome = models.CharField(
        max_length=16, choices=Outcome.choices, default=Outcome.STARTED, db_index=True
    )
    detail = models.TextField(blank=True)
    flow_instance = models.ForeignKey(
        "flows.FlowInstance",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="firings",
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["actor", "activity_cid", "trigger_cid"], name="unique_firing"
            )
        ]

    def __str__(self) -> str:
        return (
            f"{self.trigger or self.trigger_cid[:12]} on {self.activity_cid[:12]} ({self.outcome})"
        )

    @property
    def activity(self) -> Activity | None:
        return Activity.objects.filter(activity_cid=self.activity_cid).first()


# Flows that hold a follow request for someone's decision: a trigger on Follow starting one
# makes the actor document say manuallyApprovesFollowers, so peers show "requested".
HOLDING_FLOWS = frozenset({"approval"})


def holds_follows(actor: Actor) -> bool:
    """Would a Follow of ``actor`` be held (an enabled trigger on Follow, or on any type,
    for this actor or for all, starts a holding flow)? A guard is not evaluated: a trigger
    that may hold some requests makes the account one that approves its followers."""
    candidates = Trigger.objects.filter(
        enabled=True, activity_type__in=["Follow", ANY_TYPE], flow_name__in=HOLDING_FLOWS
    ).values_list("actor_scope", flat=True)
    return any(not scope or actor.username in scope for scope in candidates)
