"""The one description of triggers, firings and test verdicts: the API and the commands'
``--json`` output both print them through these serializers.

A trigger's fields keep the names ``manage.py triggers load`` reads (``type``, ``flow``,
``actors``, ``senders``), not the model's; its validation is the model's own ``clean``
(the admin's and the command's), with the errors filed under these names.
"""

from __future__ import annotations

import copy

from django.core.exceptions import NON_FIELD_ERRORS
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers
from rest_framework.settings import api_settings

from fedsx.models import Activity
from flows.registry import registration
from flows.store import MAX_ID

from .explain import recipient_for
from .models import Firing, Trigger

# model field -> the name the API, the commands and ``load`` use
API_NAMES = {
    "activity_type": "type",
    "flow_name": "flow",
    "actor_scope": "actors",
    "sender_scope": "senders",
    NON_FIELD_ERRORS: api_settings.NON_FIELD_ERRORS_KEY,
}

# what a client writes, by model field: a whole trigger (POST, PUT) gets defaults for the rest
WRITABLE = ["label", "activity_type", "actor_scope", "sender_scope", "guard", "flow_name"]
WRITABLE += ["enabled"]


def api_errors(exc: DjangoValidationError) -> dict[str, list[str]]:
    """A model's validation errors under the API's field names."""
    return {API_NAMES.get(field, field): messages for field, messages in exc.message_dict.items()}


class TriggerSerializer(serializers.ModelSerializer):
    type = serializers.CharField(
        source="activity_type", max_length=64, help_text="An activity type such as Follow, or *."
    )
    actors = serializers.ListField(
        source="actor_scope",
        child=serializers.CharField(),
        required=False,
        help_text="Usernames of the local actors whose inboxes it watches; all when empty.",
    )
    senders = serializers.ListField(
        source="sender_scope",
        child=serializers.CharField(),
        required=False,
        help_text="Remote actor ids or domains it accepts activities from; any when empty.",
    )
    flow = serializers.CharField(
        source="flow_name", max_length=200, help_text="The registered name of the flow to start."
    )

    class Meta:
        model = Trigger
        fields = [
            "id",
            "label",
            "type",
            "actors",
            "senders",
            "guard",
            "flow",
            "enabled",
            "trigger_cid",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["trigger_cid", "created_at", "updated_at"]

    def validate(self, attrs: dict) -> dict:
        """The model's clean (guard syntax, scopes, one trigger per spec) on the trigger as
        it would be saved, plus: the flow is registered."""
        if self.instance is not None and self.partial:
            candidate = copy.copy(self.instance)
        else:  # a whole trigger (POST, PUT): what is not given takes its default
            candidate = Trigger(pk=getattr(self.instance, "pk", None))
        for name, value in attrs.items():
            setattr(candidate, name, value)
        errors: dict[str, list[str]] = {}
        try:
            candidate.full_clean(exclude=["trigger_cid"], validate_unique=False)
        except DjangoValidationError as exc:
            errors = api_errors(exc)
        if "flow" not in errors and registration(candidate.flow_name) is None:
            errors["flow"] = [f"no flow is registered as {candidate.flow_name!r}"]
        if errors:
            raise serializers.ValidationError(errors)
        return {name: getattr(candidate, name) for name in WRITABLE}  # as clean() left them


class ExplanationSerializer(serializers.Serializer):
    """Why a trigger would or would not fire for an activity (triggers.explain)."""

    trigger = serializers.IntegerField()
    recipient = serializers.CharField(help_text="The local actor whose inbox it arrives in.")
    sender = serializers.CharField(help_text="The activity's actor id.")
    type_matches = serializers.BooleanField()
    actor_in_scope = serializers.BooleanField()
    sender_in_scope = serializers.BooleanField()
    guard_passes = serializers.BooleanField()
    guard_error = serializers.CharField(allow_null=True, help_text="Why the guard raised.")
    enabled = serializers.BooleanField()
    would_fire = serializers.BooleanField(help_text="Every verdict above holds.")


class TriggerTestSerializer(serializers.Serializer):
    """An activity to test a trigger against: given whole, or stored (by its id)."""

    activity = serializers.JSONField(
        required=False, help_text="The activity JSON, as a peer would send it."
    )
    activity_id = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=MAX_ID,
        help_text="The id of a stored activity instead.",
    )
    recipient = serializers.CharField(
        required=False,
        help_text="The local actor whose inbox it arrives in; default: the trigger's first "
        "actor in scope, else the first local user.",
    )

    def validate_activity(self, value) -> dict:
        if not isinstance(value, dict):
            raise serializers.ValidationError("an activity is a JSON object")
        return value

    def validate(self, attrs: dict) -> dict:
        given = [name for name in ("activity", "activity_id") if name in attrs]
        if len(given) != 1:
            raise serializers.ValidationError(
                {"activity": ["give either activity (a JSON object) or activity_id"]}
            )
        if "activity_id" in attrs:
            stored = Activity.objects.filter(pk=attrs.pop("activity_id")).first()
            if stored is None:
                raise serializers.ValidationError({"activity_id": ["no such activity"]})
            attrs["activity"] = stored.payload
        recipient = recipient_for(self.context["trigger"], attrs.get("recipient"))
        if recipient is None:
            name = attrs.get("recipient")
            message = f"no local actor named {name}" if name else "no local actor"
            raise serializers.ValidationError({"recipient": [message]})
        attrs["recipient"] = recipient
        return attrs


class FiringSerializer(serializers.ModelSerializer):
    actor = serializers.SlugRelatedField(
        slug_field="username", read_only=True, help_text="The local actor whose inbox it was."
    )
    trigger = serializers.PrimaryKeyRelatedField(
        read_only=True, allow_null=True, help_text="The trigger's id; null once deleted."
    )

    class Meta:
        model = Firing
        fields = [
            "id",
            "trigger",
            "trigger_cid",
            "actor",
            "activity_cid",
            "inbox_entry",
            "outcome",
            "detail",
            "flow_instance",
            "created_at",
        ]
        read_only_fields = fields
