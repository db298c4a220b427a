"""The kernel's resources as data: the API's bodies and the commands' ``--json`` output.

One description per resource. Ids: an actor is named by its ``name`` (local) or its
``id`` (the ActivityPub id); an activity, a delivery and a block by their row ``id``; a
host by its name.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from fedsx.delivery import deliveries_of
from fedsx.models import (
    USERNAME_RE,
    Activity,
    Actor,
    Delivery,
    DomainBlock,
    Host,
    InboxEntry,
    OutboxEntry,
    normalize_domain,
    validate_domain,
)


class ActorSerializer(serializers.ModelSerializer):
    id = serializers.CharField(source="ap_id", read_only=True, help_text="ActivityPub id")
    name = serializers.RegexField(
        USERNAME_RE,
        source="username",
        max_length=64,
        help_text="Preferred username: letters, digits, '_', '.', '-'.",
        error_messages={"invalid": "use 1-64 letters, digits, '_', '.' or '-'"},
    )
    display_name = serializers.CharField(
        source="name", max_length=500, required=False, allow_blank=True, default=""
    )
    local = serializers.BooleanField(source="is_local", read_only=True)
    type = serializers.CharField(source="actor_type", read_only=True)
    inbox = serializers.CharField(source="inbox_url", read_only=True)
    outbox = serializers.CharField(source="outbox_url", read_only=True)
    followers = serializers.CharField(source="followers_url", read_only=True)

    class Meta:
        model = Actor
        fields = [
            "id",
            "name",
            "display_name",
            "domain",
            "local",
            "type",
            "inbox",
            "outbox",
            "followers",
            "created_at",
        ]
        read_only_fields = ["domain", "created_at"]


class ActivitySerializer(serializers.ModelSerializer):
    """An activity as listed (without its JSON)."""

    ap_id = serializers.CharField(read_only=True, allow_null=True, help_text="ActivityPub id")
    object = serializers.CharField(source="object_id", read_only=True)
    cid = serializers.CharField(source="activity_cid", read_only=True)
    forwarded_by = serializers.CharField(
        read_only=True,
        help_text="Who delivered it when that was not its actor (a forward, a relay); "
        "empty for a delivery by its actor, or one of ours.",
    )

    class Meta:
        model = Activity
        fields = ["id", "ap_id", "type", "actor", "forwarded_by", "object", "cid", "received_at"]
        read_only_fields = fields


class ActivityDetailSerializer(ActivitySerializer):
    payload = serializers.JSONField(read_only=True, help_text="The activity's JSON as stored.")

    class Meta(ActivitySerializer.Meta):
        fields = [*ActivitySerializer.Meta.fields, "payload"]
        read_only_fields = fields


class InboxEntrySerializer(serializers.ModelSerializer):
    activity = ActivitySerializer(read_only=True)

    class Meta:
        model = InboxEntry
        fields = ["seq", "activity", "created_at", "triggers_applied_at"]
        read_only_fields = fields


class OutboxEntrySerializer(serializers.ModelSerializer):
    activity = ActivitySerializer(read_only=True)

    class Meta:
        model = OutboxEntry
        fields = ["seq", "activity", "created_at", "public"]
        read_only_fields = fields


class PostSerializer(serializers.Serializer):
    """What to post: an activity, or a bare object the outbox wraps in a Create."""

    activity = serializers.DictField(
        help_text="A JSON object: the outbox mints its id, actor and published time."
    )


class UndeliverableSerializer(serializers.Serializer):
    target = serializers.CharField()
    error = serializers.CharField()


class PostedSerializer(serializers.Serializer):
    """What a post made: the minted id, and how many deliveries it records."""

    id = serializers.CharField(source="ap_id")
    type = serializers.CharField()
    deliveries = serializers.SerializerMethodField()
    undeliverable = serializers.SerializerMethodField()

    def get_deliveries(self, activity: Activity) -> int:
        return len(self._rows(activity))

    @extend_schema_field(UndeliverableSerializer(many=True))
    def get_undeliverable(self, activity: Activity) -> list[dict[str, str]]:
        failed = Delivery.Status.FAILED
        rows = [
            {"target": target, "error": error}
            for target, status, error in self._rows(activity)
            if status == failed
        ]
        return UndeliverableSerializer(rows, many=True).data

    def _rows(self, activity: Activity) -> list[tuple[str, str, str]]:
        cache = self.context.setdefault("_rows", {})
        if activity.pk not in cache:
            cache[activity.pk] = list(
                deliveries_of(activity).values_list("inbox_url", "status", "last_error")
            )
        return cache[activity.pk]


class DeliverySerializer(serializers.ModelSerializer):
    activity = serializers.CharField(source="activity.ap_id", read_only=True, allow_null=True)
    activity_type = serializers.CharField(source="activity.type", read_only=True)
    inbox = serializers.CharField(source="inbox_url", read_only=True)
    next_attempt_at = serializers.SerializerMethodField()
    waits_for = serializers.IntegerField(source="waits_for_id", read_only=True, allow_null=True)

    class Meta:
        model = Delivery
        fields = [
            "id",
            "activity",
            "activity_type",
            "inbox",
            "host",
            "status",
            "attempts",
            "last_status",
            "last_error",
            "next_attempt_at",
            "delivered_at",
            "created_at",
            "waits_for",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.DateTimeField(allow_null=True))
    def get_next_attempt_at(self, delivery: Delivery) -> Any:
        """When it goes next; null unless pending."""
        if delivery.status != Delivery.Status.PENDING:
            return None
        return serializers.DateTimeField().to_representation(delivery.next_attempt_at)


class RetriedSerializer(serializers.Serializer):
    retried = serializers.ListField(child=serializers.IntegerField())
    held_hosts = serializers.ListField(
        child=serializers.CharField(),
        help_text="Hosts whose breaker holds these deliveries until their probe or a clear.",
    )


class CancelledSerializer(serializers.Serializer):
    cancelled = serializers.ListField(child=serializers.IntegerField())


class HostSerializer(serializers.ModelSerializer):
    """A remote host's health; ``pending`` and ``held`` count its waiting deliveries."""

    pending = serializers.IntegerField(source="n_pending", read_only=True, default=0)
    held = serializers.IntegerField(source="n_held", read_only=True, default=0)

    class Meta:
        model = Host
        fields = [
            "host",
            "state",
            "consecutive_failures",
            "failing_days",
            "retry_at",
            "held_since",
            "unavailable_since",
            "signature_scheme",
            "last_success_at",
            "last_failure_at",
            "last_error",
            "pending",
            "held",
        ]
        read_only_fields = fields


class ClearedSerializer(serializers.Serializer):
    host = serializers.CharField()
    state = serializers.CharField()
    released = serializers.ListField(child=serializers.IntegerField())


class DomainBlockSerializer(serializers.ModelSerializer):
    class Meta:
        model = DomainBlock
        fields = ["id", "domain", "reason", "created_at"]
        read_only_fields = ["created_at"]
        # Uniqueness is checked on the normalized domain, below.
        extra_kwargs = {"domain": {"validators": []}}

    def validate_domain(self, value: str) -> str:
        try:
            validate_domain(value)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.messages) from None
        domain = normalize_domain(value)
        taken = DomainBlock.objects.filter(domain=domain)
        if self.instance is not None:
            taken = taken.exclude(pk=self.instance.pk)
        if taken.exists():
            raise serializers.ValidationError(f"{domain} is blocked already")
        return domain
