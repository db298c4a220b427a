"""Operator views of flows: definitions with instance counts, instances with their replay
log as a timeline, and the resume / cancel / retry actions on an instance's page."""

from __future__ import annotations

import copy
import json
from urllib.parse import urlencode

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html

from . import store
from .definitions import code_state, with_instance_counts
from .forms import ResumeForm
from .models import FlowDefinition, FlowInstance, is_instance_id

Status = FlowInstance.Status
TIMELINE_LIMIT = 500  # the page shows the newest entries of a longer log


def pretty_json(value) -> str:
    return format_html(
        '<pre style="white-space: pre-wrap; max-width: 60rem; margin: 0">{}</pre>',
        json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True),
    )


def _instances_url(**filters) -> str:
    return reverse("admin:flows_flowinstance_changelist") + "?" + urlencode(filters)


def _count_column(status: str):
    """A changelist column: how many instances of the flow are in ``status``."""

    def column(obj: FlowDefinition) -> str:
        n = getattr(obj, f"n_{status}")
        if not n:
            return "0"
        return format_html(
            '<a href="{}">{}</a>', _instances_url(flow_name=obj.name, status__exact=status), n
        )

    column.short_description = status
    column.admin_order_field = f"n_{status}"
    return column


@admin.register(FlowDefinition)
class FlowDefinitionAdmin(admin.ModelAdmin):
    """Definitions come from ``manage.py flows register``; they are not edited here."""

    list_display = (
        "name",
        "import_path",
        "short_hash",
        "code_state",
        *(_count_column(s) for s in Status.values),
        "updated_at",
    )
    search_fields = ("name", "import_path", "code_hash")
    readonly_fields = ("name", "import_path", "code_hash", "code_state", "created_at", "updated_at")

    def get_queryset(self, request):
        return with_instance_counts(super().get_queryset(request))

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="code hash", ordering="code_hash")
    def short_hash(self, obj: FlowDefinition) -> str:
        return obj.code_hash[:12]

    @admin.display(description="code in this process")
    def code_state(self, obj: FlowDefinition) -> str:
        return code_state(obj)


@admin.register(FlowInstance)
class FlowInstanceAdmin(admin.ModelAdmin):
    """Instances are read-only records; the page's actions go through ``flows.store``."""

    list_display = (
        "id",
        "flow_name",
        "status",
        "waiting_kind",
        "waiting_tag",
        "wake_at",
        "log_length",
        "created_at",
        "updated_at",
    )
    list_filter = ("status", "waiting_kind", "flow_name", "created_at")
    search_fields = ("waiting_tag",)
    search_help_text = "An instance id, or the tag an instance waits on."
    date_hierarchy = "created_at"
    fields = (
        "flow_name",
        "status",
        "waiting_tag",
        "waiting_kind",
        "match_pretty",
        "wake_at",
        "input_pretty",
        "result_pretty",
        "error_text",
        "log_length",
        "code_hash",
        "created_at",
        "updated_at",
    )
    readonly_fields = fields

    def has_add_permission(self, request) -> bool:
        return False  # instances are made by flows.store.start

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # nothing is edited; see may_operate for the actions

    def may_operate(self, request) -> bool:
        return request.user.has_perm("flows.change_flowinstance")

    def get_search_results(self, request, queryset, search_term):
        found, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        term = search_term.strip()
        if is_instance_id(term):
            found |= queryset.filter(pk=int(term))
        return found, may_have_duplicates

    @admin.display(description="waits for (match)")
    def match_pretty(self, obj: FlowInstance) -> str:
        return pretty_json(obj.waiting_match) if obj.waiting_match else "—"

    @admin.display(description="input")
    def input_pretty(self, obj: FlowInstance) -> str:
        return pretty_json(obj.input)

    @admin.display(description="result")
    def result_pretty(self, obj: FlowInstance) -> str:
        return pretty_json(obj.result) if obj.status == Status.DONE else "—"

    @admin.display(description="error")
    def error_text(self, obj: FlowInstance) -> str:
        if not obj.error:
            return "—"
        return format_html('<pre style="white-space: pre-wrap; margin: 0">{}</pre>', obj.error)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        instance = self.get_object(request, unquote(object_id))
        resume_form = ResumeForm(initial={"at": instance.log_length if instance else 0})
        if request.method == "POST" and instance is not None:
            if not self.may_operate(request):
                raise PermissionDenied
            action = request.POST.get("_flow_action")
            if action == "resume":
                resume_form = ResumeForm(request.POST)
                if resume_form.is_valid():
                    data = resume_form.cleaned_data
                    outcome = store.resume(instance.pk, data["value"], at=data["at"])
                    return self._after(request, instance, "resumed", outcome)
            elif action == "wake":
                outcome = store.wake(instance.pk, early=True)
                return self._after(request, instance, "woken", outcome)
            elif action == "cancel":
                return self._after(request, instance, "cancelled", store.cancel(instance.pk))
            elif action == "retry":
                return self._after(request, instance, "retried", store.retry(instance.pk))
            # An invalid form: show the page again, with its errors, as a GET would.
            request = copy.copy(request)
            request.method = "GET"
        context = {**(extra_context or {}), "resume_form": resume_form}
        if instance is not None:
            context.update(self._timeline(instance), may_operate=self.may_operate(request))
            context["waiting_for"] = store.waiting_for(instance) + store.time_left(instance)
        return super().change_view(request, object_id, form_url, extra_context=context)

    def _timeline(self, instance: FlowInstance) -> dict:
        entries = list(instance.log.order_by("-seq")[:TIMELINE_LIMIT])
        entries.reverse()
        for entry in entries:
            entry.value_json = json.dumps(entry.value, ensure_ascii=False, sort_keys=True)
        return {"log_entries": entries, "log_hidden": max(0, instance.log_length - len(entries))}

    def _after(self, request, instance: FlowInstance, verb: str, outcome: store.Outcome):
        if outcome.status == "error":
            messages.error(request, f"Instance {instance.pk} was not {verb}: {outcome.detail}")
        else:
            text = f"Instance {instance.pk} {verb}: {outcome.status}"
            if outcome.status == "done":
                text += " " + json.dumps(outcome.value, ensure_ascii=False)
            elif outcome.detail and outcome.detail != outcome.status:
                text += f" ({outcome.detail})"
            level = messages.SUCCESS if outcome.ok else messages.WARNING
            messages.add_message(request, level, text)
        return HttpResponseRedirect(request.path)
