"""The one description of flows, instances, their logs and the store's outcomes: the API and
``manage.py flows --json`` both print them through these serializers.

Every field name and status string is the store's (flows/status.py); an outcome is
``flows.store.Outcome`` with the instance's id.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from . import store
from .definitions import code_state
from .models import FlowDefinition, FlowInstance, FlowLogEntry
from .registry import registration
from .values import NotJSON, check_json


def checked_json(value: Any, what: str) -> Any:
    """``value`` if the store can keep it unchanged, else a validation error saying why."""
    try:
        return check_json(value, what)
    except NotJSON as exc:
        raise serializers.ValidationError(str(exc)) from None


class OutcomeSerializer(serializers.Serializer):
    """What a store call did (``status`` after it), or why it did nothing (``error``)."""

    id = serializers.IntegerField(allow_null=True, help_text="The instance's id.")
    status = serializers.CharField(help_text="The instance's status after the call.")
    value = serializers.JSONField(allow_null=True, help_text="The result, once done.")
    tag = serializers.CharField(allow_null=True, help_text="The tag it now waits on.")
    error = serializers.CharField(allow_null=True, help_text="A stable code, when not ok.")
    detail = serializers.CharField(allow_blank=True, help_text="A sentence for people.")

    @classmethod
    def of(cls, instance_id: int | None, outcome: store.Outcome) -> dict:
        return cls({"id": instance_id, **outcome.as_dict()}).data


class FlowInstanceSerializer(serializers.ModelSerializer):
    """An instance as lists show it."""

    flow = serializers.CharField(source="flow_name", read_only=True)
    waiting = serializers.CharField(
        source="waiting_kind",
        read_only=True,
        allow_null=True,
        help_text="What a suspended instance waits for: operator, activity or timer.",
    )
    match = serializers.JSONField(
        source="waiting_match",
        read_only=True,
        allow_null=True,
        help_text="What its receive waits for.",
    )

    class Meta:
        model = FlowInstance
        fields = [
            "id",
            "flow",
            "status",
            "waiting_tag",
            "waiting",
            "match",
            "wake_at",
            "log_length",
            "code_hash",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def to_representation(self, instance: FlowInstance) -> dict:
        data = super().to_representation(instance)
        data["waiting"] = data["waiting"] or None
        return data


class FlowLogEntrySerializer(serializers.ModelSerializer):
    class Meta:
        model = FlowLogEntry
        fields = ["seq", "kind", "tag", "value", "time"]
        read_only_fields = fields


class FlowInstanceStatusSerializer(FlowInstanceSerializer):
    """One instance: its summary, input, where it stands (the store's outcome of its state),
    what it waits for in a sentence, and its error text."""

    input = serializers.JSONField(read_only=True)
    value = serializers.SerializerMethodField(help_text="The result, once done.")
    tag = serializers.SerializerMethodField(help_text="The tag it waits on, when suspended.")
    error = serializers.SerializerMethodField(
        help_text="flow_crashed or nondeterministic, else null."
    )
    detail = serializers.SerializerMethodField(help_text="Where it stands, for people.")
    waiting_for = serializers.SerializerMethodField(
        help_text="What it waits for and the time left, when suspended."
    )
    error_text = serializers.CharField(
        source="error", read_only=True, help_text="What went wrong, with the traceback."
    )

    class Meta(FlowInstanceSerializer.Meta):
        fields = [
            *FlowInstanceSerializer.Meta.fields,
            "input",
            "value",
            "tag",
            "error",
            "detail",
            "waiting_for",
            "error_text",
        ]
        read_only_fields = fields

    def _outcome(self, instance: FlowInstance) -> store.Outcome:
        cached = getattr(instance, "_outcome", None)
        if cached is None:
            cached = instance._outcome = store.outcome_of(instance)
        return cached

    @extend_schema_field(OpenApiTypes.ANY)
    def get_value(self, instance: FlowInstance) -> Any:
        return self._outcome(instance).value

    def get_tag(self, instance: FlowInstance) -> str | None:
        return self._outcome(instance).tag

    def get_error(self, instance: FlowInstance) -> str | None:
        return self._outcome(instance).error

    def get_detail(self, instance: FlowInstance) -> str:
        return self._outcome(instance).detail

    def get_waiting_for(self, instance: FlowInstance) -> str | None:
        if instance.status != FlowInstance.Status.SUSPENDED:
            return None
        return store.waiting_for(instance) + store.time_left(instance)


class FlowInstanceDetailSerializer(FlowInstanceStatusSerializer):
    """One instance with its replay log: the newest entries, oldest first, and how many
    older ones were left out."""

    # How many: the context's log_limit (None: all, as `flows status --log` prints).

    LOG_LIMIT = 500  # a longer log pages at /api/v1/flow-instances/{id}/log/

    log = serializers.SerializerMethodField(help_text="The replay log, oldest entry first.")
    log_hidden = serializers.SerializerMethodField(help_text="Older entries left out of `log`.")

    class Meta(FlowInstanceStatusSerializer.Meta):
        fields = [*FlowInstanceStatusSerializer.Meta.fields, "log", "log_hidden"]
        read_only_fields = fields

    def _entries(self, instance: FlowInstance) -> list[FlowLogEntry]:
        cached = getattr(instance, "_log_entries", None)
        if cached is None:
            limit = self.context.get("log_limit", self.LOG_LIMIT)
            newest = instance.log.order_by("-seq")
            cached = list(newest[:limit] if limit is not None else newest)
            cached.reverse()
            instance._log_entries = cached
        return cached

    @extend_schema_field(FlowLogEntrySerializer(many=True))
    def get_log(self, instance: FlowInstance) -> list[dict]:
        return FlowLogEntrySerializer(self._entries(instance), many=True).data

    def get_log_hidden(self, instance: FlowInstance) -> int:
        return max(0, instance.log_length - len(self._entries(instance)))


class FlowDefinitionSerializer(serializers.ModelSerializer):
    """A registered flow as last synced, with its instances counted by status."""

    # The counts are the annotations of flows.definitions.with_instance_counts.

    code = serializers.SerializerMethodField(
        help_text="Whether this process runs the registered code: as registered, "
        "changed: run register, or not registered."
    )
    counts = serializers.SerializerMethodField(help_text="Its instances by status.")

    class Meta:
        model = FlowDefinition
        fields = ["name", "import_path", "code_hash", "code", "counts", "created_at", "updated_at"]
        read_only_fields = fields

    def get_code(self, definition: FlowDefinition) -> str:
        return code_state(definition)

    @extend_schema_field(
        {
            "type": "object",
            "properties": {s: {"type": "integer"} for s in FlowInstance.Status.values},
        }
    )
    def get_counts(self, definition: FlowDefinition) -> dict[str, int]:
        return {s: getattr(definition, f"n_{s}", 0) for s in FlowInstance.Status.values}


class RegisteredFlowSerializer(serializers.Serializer):
    """A flow registered in this process, and whether its definition row is synced."""

    name = serializers.CharField()
    import_path = serializers.CharField()
    code_hash = serializers.CharField()
    definition = serializers.CharField()


class SyncReportSerializer(serializers.Serializer):
    added = serializers.ListField(child=serializers.CharField())
    changed = serializers.ListField(child=serializers.CharField())
    removed = serializers.ListField(child=serializers.CharField())
    unchanged = serializers.ListField(child=serializers.CharField())
    suspended_on_old_code = serializers.DictField(child=serializers.IntegerField())


class ReplayCheckSerializer(serializers.Serializer):
    instance_id = serializers.IntegerField()
    flow_name = serializers.CharField()
    ok = serializers.BooleanField()
    detail = serializers.CharField()


# ── requests ─────────────────────────────────────────────────────────────────────────


class StartSerializer(serializers.Serializer):
    flow = serializers.CharField(max_length=200, help_text="The flow's registered name.")
    input = serializers.JSONField(
        required=False, default=dict, help_text="A JSON object, the flow's input ({})."
    )

    def validate_flow(self, value: str) -> str:
        if registration(value) is None:
            raise serializers.ValidationError(f"no flow is registered as {value!r}")
        return value

    def validate_input(self, value: Any) -> dict:
        if not isinstance(value, dict):
            raise serializers.ValidationError(
                f"the input must be a JSON object, not a {type(value).__name__}"
            )
        return checked_json(value, "the input")


class ResumeSerializer(serializers.Serializer):
    """The answer to the wait an instance is suspended on, and which wait it answers."""

    value = serializers.JSONField(allow_null=True, help_text="Any JSON value, for the flow.")
    tag = serializers.CharField(
        required=False,
        allow_blank=True,
        help_text="Refuse (409 moved_on) unless the instance waits on this tag.",
    )
    at = serializers.IntegerField(
        required=False,
        min_value=0,
        allow_null=True,
        help_text="The log length you saw: refuse (409 moved_on) if the instance moved on.",
    )

    def validate_value(self, value: Any) -> Any:
        return checked_json(value, "the value")
