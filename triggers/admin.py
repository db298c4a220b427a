"""Operator views: triggers (validated, with a test form) and their firings."""

from __future__ import annotations

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from fedsx.models import Activity, Actor

from .explain import explain
from .forms import TestActivityForm, TriggerForm
from .models import Firing, Trigger


@admin.register(Trigger)
class TriggerAdmin(admin.ModelAdmin):
    form = TriggerForm
    list_display = ("id", "__str__", "activity_type", "scope", "guard", "flow_name", "enabled")
    list_display_links = ("id", "__str__")
    list_filter = ("enabled", "activity_type", "flow_name")
    search_fields = ("label", "guard", "flow_name", "trigger_cid")
    readonly_fields = ("trigger_cid", "created_at", "updated_at", "firings_link")
    actions = ["disable", "enable"]

    @admin.display(description="actors")
    def scope(self, obj: Trigger) -> str:
        return ", ".join(obj.actor_scope) or "all"

    @admin.display(description="firings")
    def firings_link(self, obj: Trigger) -> str:
        if not obj.pk:
            return "—"
        url = reverse("admin:triggers_firing_changelist") + f"?trigger__id__exact={obj.pk}"
        return format_html('<a href="{}">{} firings</a>', url, obj.firings.count())

    @admin.action(description="Disable the selected triggers", permissions=["change"])
    def disable(self, request, queryset):
        self._switch(queryset, False)

    @admin.action(description="Enable the selected triggers", permissions=["change"])
    def enable(self, request, queryset):
        self._switch(queryset, True)

    def _switch(self, queryset, enabled: bool) -> None:
        # One UPDATE; TriggerQuerySet.update bumps the registry version.
        queryset.exclude(enabled=enabled).update(enabled=enabled, updated_at=timezone.now())

    def get_urls(self):
        test = self.admin_site.admin_view(self.test_view)
        return [path("<int:pk>/test/", test, name="triggers_trigger_test"), *super().get_urls()]

    def test_view(self, request, pk: int):
        trigger = get_object_or_404(Trigger, pk=pk)
        if not self.has_view_permission(request, trigger):  # admin_view only checks is_staff
            raise PermissionDenied
        form = TestActivityForm(request.POST or None)
        verdict = None
        if request.method == "POST" and form.is_valid():
            verdict = explain(
                trigger, form.cleaned_data["activity"], form.cleaned_data["recipient"]
            )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": trigger,
            "title": f"Test {trigger} against an activity",
            "form": form,
            "verdict": verdict,
        }
        return TemplateResponse(request, "admin/triggers/trigger/test.html", context)


class LocalActorFilter(admin.SimpleListFilter):
    title = "actor"
    parameter_name = "actor"

    def lookups(self, request, model_admin):
        return [
            (a.pk, a.username) for a in Actor.objects.filter(is_local=True).order_by("username")
        ]

    def queryset(self, request, queryset):
        return queryset.filter(actor_id=self.value()) if self.value() else queryset


@admin.register(Firing)
class FiringAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "trigger",
        "actor",
        "activity_link",
        "outcome_when_fired",
        "instance_link",
        "created_at",
    )
    list_filter = ("outcome", "trigger", LocalActorFilter, "created_at")
    search_fields = ("activity_cid", "trigger_cid", "detail", "actor__username")
    list_select_related = ("trigger", "actor", "flow_instance")
    date_hierarchy = "created_at"
    fields = (
        "actor",
        "trigger",
        "trigger_cid",
        "activity_link",
        "activity_cid",
        "inbox_entry",
        "outcome",
        "detail",
        "instance_link",
        "created_at",
    )
    readonly_fields = fields

    def has_add_permission(self, request) -> bool:
        return False  # firings are what happened; only the pipeline writes them

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    # The flow may have moved on since (a suspended approval resumed): its link shows now.
    @admin.display(description="outcome when fired", ordering="outcome")
    def outcome_when_fired(self, obj: Firing) -> str:
        return obj.get_outcome_display()

    @admin.display(description="activity")
    def activity_link(self, obj: Firing) -> str:
        activity = Activity.objects.filter(activity_cid=obj.activity_cid).only("pk", "type").first()
        same = reverse("admin:triggers_firing_changelist") + f"?q={obj.activity_cid}"
        if activity is None:
            return format_html('<a href="{}">{}</a>', same, obj.activity_cid[:16])
        url = reverse("admin:fedsx_activity_change", args=[activity.pk])
        return format_html(
            '<a href="{}">{}</a> (<a href="{}">all its firings</a>)', url, activity, same
        )

    @admin.display(description="flow instance")
    def instance_link(self, obj: Firing) -> str:
        if obj.flow_instance_id is None:
            return "—"
        try:
            url = reverse("admin:flows_flowinstance_change", args=[obj.flow_instance_id])
        except Exception:  # the flows admin is not installed
            return str(obj.flow_instance)
        return format_html('<a href="{}">{}</a>', url, obj.flow_instance)
