"""Operator views of the kernel's records. Activities and log entries are read-only: they
are what peers sent, and the logs are append-only."""

from __future__ import annotations

import json

from django.contrib import admin
from django.utils.html import format_html

from .models import Activity, Actor, DomainBlock, Follow, InboxEntry, OutboxEntry


def pretty_json(value) -> str:
    return format_html(
        '<pre style="white-space: pre-wrap; max-width: 60rem">{}</pre>',
        json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True),
    )


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
        "inbox_seq",
        "outbox_seq",
        "document_pretty",
        "fetched_at",
        "key_fetched_at",
        "created_at",
        "updated_at",
    )
    exclude = ("private_key_pem", "document")

    @admin.display(description="document")
    def document_pretty(self, obj: Actor) -> str:
        return pretty_json(obj.document) if obj.document else "—"


@admin.register(Activity)
class ActivityAdmin(ReadOnlyAdmin):
    list_display = ("type", "ap_id", "actor", "object_id", "received_at")
    list_filter = ("type", "received_at")
    search_fields = ("ap_id", "activity_cid", "actor", "object_id")
    date_hierarchy = "received_at"
    fields = (
        "ap_id",
        "activity_cid",
        "type",
        "actor",
        "object_id",
        "received_at",
        "payload_pretty",
    )
    readonly_fields = fields

    @admin.display(description="payload")
    def payload_pretty(self, obj: Activity) -> str:
        return pretty_json(obj.payload)


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
        return format_html(
            '<a href="../activity/{}/change/">{}</a>',
            obj.activity_id,
            obj.activity.ap_id or obj.activity.activity_cid,
        )


@admin.register(InboxEntry)
class InboxEntryAdmin(LogEntryAdmin):
    list_display = (*LogEntryAdmin.list_display, "triggers_applied_at")
    list_filter = ("actor", *LogEntryAdmin.list_filter)


@admin.register(OutboxEntry)
class OutboxEntryAdmin(LogEntryAdmin):
    list_filter = ("actor", *LogEntryAdmin.list_filter)


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
