"""The kernel resources' filters (django-filter): each names its query parameters."""

from __future__ import annotations

from datetime import UTC

import django_filters as filters
from django.core.exceptions import ValidationError
from django_filters.fields import IsoDateTimeField

from fedsx.hosts import normalize_host
from fedsx.models import Activity, Actor, Delivery, Host


class ActorFilter(filters.FilterSet):
    local = filters.BooleanFilter(field_name="is_local")
    domain = filters.CharFilter(method="by_domain")

    class Meta:
        model = Actor
        fields = ["local", "domain"]

    def by_domain(self, queryset, name, value):
        return queryset.filter(domain=normalize_host(value))


class UtcDateTimeField(IsoDateTimeField):
    """An ISO 8601 time, in UTC: any offset Python reads, whatever the database allows."""

    def to_python(self, value):
        moment = super().to_python(value)
        if moment is None:
            return None
        try:
            return moment.astimezone(UTC)
        except OverflowError:
            raise ValidationError(self.error_messages["invalid"], code="invalid") from None


class UtcDateTimeFilter(filters.IsoDateTimeFilter):
    field_class = UtcDateTimeField


class ActivityFilter(filters.FilterSet):
    type = filters.CharFilter(help_text="Activity type, e.g. Follow")
    actor = filters.CharFilter(help_text="The sending actor's id")
    received_after = UtcDateTimeFilter(field_name="received_at", lookup_expr="gte")
    received_before = UtcDateTimeFilter(field_name="received_at", lookup_expr="lt")

    class Meta:
        model = Activity
        fields = ["type", "actor", "received_after", "received_before"]


class LogEntryFilter(filters.FilterSet):
    """An actor's inbox or outbox log, by the type of its activities."""

    type = filters.CharFilter(field_name="activity__type", help_text="Activity type")


class DeliveryFilter(filters.FilterSet):
    status = filters.ChoiceFilter(choices=Delivery.Status.choices)
    host = filters.CharFilter(method="by_host", help_text="host, host:port or a URL on it")
    activity = filters.CharFilter(field_name="activity__ap_id", help_text="The activity's id")

    class Meta:
        model = Delivery
        fields = ["status", "host", "activity"]

    def by_host(self, queryset, name, value):
        return queryset.filter(host=normalize_host(value))


class HostFilter(filters.FilterSet):
    state = filters.ChoiceFilter(choices=Host.State.choices)

    class Meta:
        model = Host
        fields = ["state"]
