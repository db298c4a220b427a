"""Operator views of the kernel's records. Activities and log entries are read-only: they
are what peers sent, and the logs are append-only. Deliveries and hosts are read-only too;
their actions (retry, cancel, clear) go through ``fedsx.delivery`` and ``fedsx.hosts``."""

from __future__ import annotations

import json
from urllib.parse import urlencode, urlsplit

from django.contrib import admin, messages
from django.db.models import Count
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from rest_framework.authtoken.admin import TokenAdmin
from rest_framework.authtoken.models import TokenProxy

from .dashboard import admin as dashboard_admin
from .hosts import HOST_COUNTED, with_delivery_counts
from .models import (
    Activity,
    Actor,
    ApiToken,
    Delivery,
    DomainBlock,
    Follow,
    Host,
    InboxEntry,
    OutboxEntry,
    host_of,
)

DeliveryStatus = Delivery.Status
# How many hosts the delivery list's host filter offers (those needing attention first);
# any other host is one search or one link from its Host row away.
HOST_FILTER_CHOICES = 20


def pretty_json(value) -> str:
    return format_html(
        '<pre style="white-space: pre-wrap; max-width: 60rem">{}</pre>',
        json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True),
    )


def deliveries_url(**filters) -> str:
    return reverse("admin:fedsx_delivery_changelist") + "?" + urlencode(filters)


def activity_link(activity_id: int, label: str) -> str:
    url = reverse("admin:fedsx_activity_change", args=[activity_id])
    return format_html('<a href="{}">{}</a>', url, label)


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Actor)
class ActorAdmin(admin.ModelAdmin):
    list_display = ("__str__", "ap_id", "is_local", "actor_type", "inbox_seq", "fetched_at")
    list_filter = ("is_local", "actor_type", "domain")
    search_fields = ("ap_id", "username", "domain", "name", "key_id")
    readonly_fields = (
        "ap_id",
        "key_id",
        "public_key_pem",
        "ed25519_public_key",
        "inbox_seq",
        "outbox_seq",
        "document_pretty",
        "fetched_at",
        "key_fetched_at",
        "created_at",
        "updated_at",
    )
    exclude = ("private_key_pem", "ed25519_private_key", "document")

    @admin.display(description="document")
    def document_pretty(self, obj: Actor) -> str:
        return pretty_json(obj.document) if obj.document else "—"


class ForwardedFilter(admin.SimpleListFilter):
    """Activities delivered by someone else than their actor (a forward, a relay), or not;
    ``prefix`` reaches them from a log entry (``activity__``)."""

    title = "forwarded"
    parameter_name = "forwarded"
    prefix = ""

    def lookups(self, request, model_admin):
        return [("yes", "forwarded or relayed"), ("no", "from its actor")]

    def queryset(self, request, queryset):
        field = f"{self.prefix}forwarded_by"
        if self.value() == "yes":
            return queryset.exclude(**{field: ""})
        if self.value() == "no":
            return queryset.filter(**{field: ""})
        return queryset


class EntryForwardedFilter(ForwardedFilter):
    prefix = "activity__"


@admin.register(Activity)
class ActivityAdmin(ReadOnlyAdmin):
    list_display = ("type", "ap_id", "actor", "object_id", "forwarded_by", "received_at")
    list_filter = ("type", ForwardedFilter, "received_at")
    search_fields = ("ap_id", "activity_cid", "actor", "object_id", "forwarded_by")
    date_hierarchy = "received_at"
    fields = (
        "ap_id",
        "activity_cid",
        "type",
        "actor",
        "forwarded_by",
        "object_id",
        "received_at",
        "deliveries",
        "payload_pretty",
    )
    readonly_fields = fields

    @admin.display(description="payload")
    def payload_pretty(self, obj: Activity) -> str:
        return pretty_json(obj.payload)

    @admin.display(description="deliveries")
    def deliveries(self, obj: Activity) -> str:
        """Counts per status, each a link to those deliveries (an activity to thousands of
        inboxes would make an inline unreadable)."""
        counts = dict(
            Delivery.objects.filter(activity=obj)
            .order_by()
            .values_list("status")
            .annotate(n=Count("id"))
        )
        if not counts:
            return "none (received, or posted to nobody remote)"
        total = format_html(
            '<a href="{}">{} in all</a>', deliveries_url(activity=obj.pk), sum(counts.values())
        )
        parts = format_html_join(
            ", ",
            '<a href="{}">{} {}</a>',
            (
                (deliveries_url(activity=obj.pk, status__exact=status), counts[status], status)
                for status in DeliveryStatus.values
                if status in counts
            ),
        )
        return format_html("{}: {}", total, parts)


class LogEntryAdmin(ReadOnlyAdmin):
    list_display = ("actor", "seq", "activity_type", "activity_link", "created_at")
    list_filter = ("activity__type", "created_at")
    search_fields = ("actor__username", "actor__ap_id", "activity__ap_id", "activity__activity_cid")
    list_select_related = ("actor", "activity")
    raw_id_fields = ("actor", "activity")

    @admin.display(description="type", ordering="activity__type")
    def activity_type(self, obj) -> str:
        return obj.activity.type

    @admin.display(description="activity")
    def activity_link(self, obj) -> str:
        return activity_link(obj.activity_id, obj.activity.ap_id or obj.activity.activity_cid)


class LocalActorFilter(admin.SimpleListFilter):
    """Only local actors have logs: the choices are those, not every remote actor seen."""

    title = "actor"
    parameter_name = "actor"

    def lookups(self, request, model_admin):
        return [
            (str(pk), name)
            for pk, name in Actor.objects.filter(is_local=True).values_list("pk", "username")
        ]

    def queryset(self, request, queryset):
        value = self.value()
        if value is None:
            return queryset
        return queryset.filter(actor_id=int(value)) if value.isdigit() else queryset.none()


@admin.register(InboxEntry)
class InboxEntryAdmin(LogEntryAdmin):
    list_display = (*LogEntryAdmin.list_display, "forwarded_by", "triggers_applied_at")
    list_filter = (LocalActorFilter, EntryForwardedFilter, *LogEntryAdmin.list_filter)

    @admin.display(description="forwarded by", ordering="activity__forwarded_by")
    def forwarded_by(self, obj: InboxEntry) -> str:
        return obj.activity.forwarded_by


@admin.register(OutboxEntry)
class OutboxEntryAdmin(LogEntryAdmin):
    list_display = ("actor", "seq", "public", "activity_type", "activity_link", "created_at")
    list_filter = (LocalActorFilter, "public", *LogEntryAdmin.list_filter)
    fields = ("actor", "seq", "public", "activity_link", "created_at")
    readonly_fields = fields


@admin.register(Follow)
class FollowAdmin(admin.ModelAdmin):
    list_display = ("follower", "following", "state", "created_at", "updated_at")
    list_filter = ("state",)
    search_fields = ("follower__ap_id", "following__ap_id", "follow_activity_id")
    raw_id_fields = ("follower", "following")


@admin.register(DomainBlock)
class DomainBlockAdmin(admin.ModelAdmin):
    list_display = ("domain", "reason", "created_at")
    search_fields = ("domain", "reason")


# ── deliveries and hosts ───────────────────────────────────────────────────────────────


class HostFilter(admin.SimpleListFilter):
    """Deliveries of one host (an exact match on the indexed column). The choices are the
    hosts that need attention, at most HOST_FILTER_CHOICES of them, and the chosen one:
    never a DISTINCT over every delivery or a list of a thousand hosts."""

    title = "host"
    parameter_name = "host"

    def lookups(self, request, model_admin):
        troubled = list(
            Host.objects.exclude(state=Host.State.OK)
            .order_by("-consecutive_failures", "host")
            .values_list("host", flat=True)[:HOST_FILTER_CHOICES]
        )
        chosen = self.value()
        if chosen and chosen not in troubled:
            troubled.insert(0, chosen)
        return [(host, host) for host in troubled]

    def queryset(self, request, queryset):
        value = self.value()
        return queryset if value is None else queryset.filter(host=value)


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "status",
        "host",
        "activity_column",
        "attempts",
        "last_status",
        "last_error_short",
        "next_attempt",
        "delivered_at",
    )
    list_filter = ("status", HostFilter)
    list_select_related = ("activity",)
    search_fields = ("host",)  # replaced by exact look-ups: see get_search_results
    search_help_text = "A delivery id, a host, an inbox URL or an activity id (exact)."
    show_full_result_count = False  # one COUNT per page is enough on a large table
    actions = ["retry_now", "cancel"]
    fields = (
        "activity_column",
        "sender",
        "inbox_url",
        "host_column",
        "recipient",
        "subject",
        "waits_for",
        "status",
        "attempts",
        "next_attempt_at",
        "claimed_until",
        "last_status",
        "last_error",
        "created_at",
        "delivered_at",
        "updated_at",
    )
    readonly_fields = fields

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # a delivery says what became of a post: it is never dropped

    def has_operate_permission(self, request) -> bool:
        return request.user.has_perm("fedsx.change_delivery")

    def get_queryset(self, request):
        return super().get_queryset(request).defer("activity__payload")

    def lookup_allowed(self, lookup, value, request=None) -> bool:
        # The activity page links here with ?activity=<pk>.
        return lookup == "activity" or super().lookup_allowed(lookup, value, request)

    def get_search_results(self, request, queryset, search_term):
        """Exact matches on indexed columns only: a substring search would scan every
        delivery ever made."""
        term = search_term.strip()
        if not term:
            return queryset, False
        found = queryset.filter(inbox_url=term) | queryset.filter(activity__ap_id=term)
        if "//" not in term:
            found |= queryset.filter(host=term.lower().rstrip("."))
        elif urlsplit(term).path in ("", "/"):  # an origin: its host
            found |= queryset.filter(host=host_of(term))
        if term.isascii() and term.isdigit() and len(term) <= 18:
            found |= queryset.filter(pk=int(term))
        return found, False

    @admin.display(description="activity", ordering="activity__type")
    def activity_column(self, obj: Delivery) -> str:
        return activity_link(obj.activity_id, f"{obj.activity.type} {obj.activity.ap_id}")

    @admin.display(description="host", ordering="host")
    def host_column(self, obj: Delivery) -> str:
        row = Host.objects.filter(host=obj.host).only("pk", "state").first()
        if row is None:
            return obj.host
        url = reverse("admin:fedsx_host_change", args=[row.pk])
        return format_html('<a href="{}">{}</a> ({})', url, obj.host, row.state)

    @admin.display(description="last error")
    def last_error_short(self, obj: Delivery) -> str:
        text = obj.last_error
        return text if len(text) <= 80 else text[:79] + "…"

    @admin.display(description="next attempt", ordering="next_attempt_at")
    def next_attempt(self, obj: Delivery):
        return obj.next_attempt_at if obj.status == DeliveryStatus.PENDING else None

    @admin.action(description="Retry now", permissions=["operate"])
    def retry_now(self, request, queryset):
        from . import delivery

        delivered = queryset.filter(status=DeliveryStatus.DELIVERED).count()
        ids = delivery.retry(queryset)
        text = f"{len(ids)} deliveries handed out again."
        if delivered:
            text += f" {delivered} already delivered were left alone."
        self.message_user(request, text, messages.SUCCESS)

    @admin.action(description="Cancel", permissions=["operate"])
    def cancel(self, request, queryset):
        from . import delivery

        n = delivery.cancel(queryset)
        text = f"{n} deliveries cancelled."
        if n == 0:
            text = "Nothing cancelled: only pending or held deliveries can be."
        self.message_user(request, text, messages.SUCCESS if n else messages.WARNING)


def _count_column(status: str):
    """A changelist column: how many of the host's deliveries are in ``status``."""

    def column(obj: Host) -> str:
        n = getattr(obj, f"n_{status}")
        if not n:
            return "0"
        return format_html(
            '<a href="{}">{}</a>', deliveries_url(host=obj.host, status__exact=status), n
        )

    column.short_description = status
    column.admin_order_field = f"n_{status}"
    return column


@admin.register(Host)
class HostAdmin(ReadOnlyAdmin):
    list_display = (
        "host",
        "state",
        "consecutive_failures",
        "failing_days",
        "retry_at",
        "held_since",
        "unavailable_since",
        "signature_scheme",
        *(_count_column(s) for s in HOST_COUNTED),
        "last_success_at",
        "last_failure_at",
    )
    list_filter = ("state", "signature_scheme")
    search_fields = ("host",)
    actions = ["clear"]
    fields = (
        "host",
        "state",
        "consecutive_failures",
        "failing_days",
        "last_failure_day",
        "retry_at",
        "unavailable_since",
        "signature_scheme",
        "last_success_at",
        "last_failure_at",
        "last_error",
        "deliveries",
        "updated_at",
    )
    readonly_fields = fields

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def has_operate_permission(self, request) -> bool:
        return request.user.has_perm("fedsx.change_host")

    def get_queryset(self, request):
        return with_delivery_counts(super().get_queryset(request), *HOST_COUNTED)

    @admin.display(description="deliveries")
    def deliveries(self, obj: Host) -> str:
        counts = dict(
            Delivery.objects.filter(host=obj.host)
            .order_by()
            .values_list("status")
            .annotate(n=Count("id"))
        )
        if not counts:
            return "none"
        return format_html_join(
            ", ",
            '<a href="{}">{} {}</a>',
            (
                (deliveries_url(host=obj.host, status__exact=status), counts[status], status)
                for status in DeliveryStatus.values
                if status in counts
            ),
        )

    @admin.action(description="Clear (release held deliveries)", permissions=["operate"])
    def clear(self, request, queryset):
        from . import hosts

        names, released = [], 0
        for name in queryset.values_list("host", flat=True):
            ids = hosts.clear(name)
            if ids is not None:
                names.append(name)
                released += len(ids)
        self.message_user(
            request,
            f"{len(names)} hosts cleared, {released} held deliveries released.",
            messages.SUCCESS,
        )


dashboard_admin.install(admin.site)  # the federation dashboard, linked from the index


# API tokens: named by their user, never by their key (fedsx.models.ApiToken); a key is
# shown once, to whoever makes it. DRF's own page, which lists keys, is taken away.
admin.site.unregister(TokenProxy)


@admin.register(ApiToken)
class ApiTokenAdmin(TokenAdmin):
    list_display = ("user", "created")

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # a token is made or revoked, never edited

    def save_model(self, request, obj, form, change) -> None:
        super().save_model(request, obj, form, change)
        self.message_user(
            request,
            format_html(
                "The API token of {} is <code>{}</code>. Copy it now: it is not shown again.",
                obj.user,
                obj.key,
            ),
            messages.SUCCESS,
        )
