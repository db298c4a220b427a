"""The federation dashboard in the Django admin, at ``<admin>/fedsx/dashboard/`` and linked
from the top of the admin index; and the inbox tallies it charts, as a read-only list.

Staff only (the admin's own login), and each part needs the view permission of what it
counts, as the lists its numbers link to do: a user with none of them gets 403.
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin import AdminSite
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone

from ..models import InboxTally
from ..tallies import inbox_tally
from . import charts, figures

# Each part of the page, and the permission it needs.
PARTS = {
    "inbox": "fedsx.view_inboxtally",
    "deliveries": "fedsx.view_delivery",
    "hosts": "fedsx.view_host",
    "flows": "flows.view_flowinstance",
    "unapplied": "fedsx.view_inboxentry",
}


@admin.register(InboxTally)
class InboxTallyAdmin(admin.ModelAdmin):
    """Inbox requests per hour and outcome: the counts behind the dashboard's inbox chart
    (refused requests are stored nowhere else)."""

    list_display = ("hour", "outcome", "count")
    list_filter = ("outcome",)
    date_hierarchy = "hour"

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


def parts_allowed(user) -> set[str]:
    return {part for part, perm in PARTS.items() if user.has_perm(perm)}


def dashboard(request: HttpRequest, site: AdminSite) -> TemplateResponse:
    allowed = parts_allowed(request.user)
    if not allowed:
        raise PermissionDenied
    inbox_tally.flush()  # this process's latest counts, so the page is current where it runs
    now = timezone.now()
    context = {
        **site.each_context(request),
        "title": "Federation dashboard",
        "now": now,
        "hours": figures.HOURS,
        "parts": allowed,
    }
    if "inbox" in allowed:
        inbox = figures.inbox(now, site.name)
        colours = charts.outcome_colours(inbox.outcomes)
        context["inbox"] = inbox
        context["inbox_legend"] = [(f, colours[f.label]) for f in inbox.outcomes]
        context["inbox_chart"] = charts.hourly(
            f"Inbox requests per hour, last {figures.HOURS} hours", inbox.hours, colours
        )
    if "deliveries" in allowed:
        context["deliveries"] = figures.deliveries(now, site.name)
        context["deliveries_chart"] = charts.bars(
            f"Deliveries pending and held now, settled in the last {figures.HOURS} hours",
            context["deliveries"],
        )
    if "hosts" in allowed:
        context["failing_hosts"] = figures.failing_hosts(site.name)
    if "flows" in allowed:
        context["instances"] = figures.instances_by_status(site.name)
        context["instances_chart"] = charts.bars("Flow instances by status", context["instances"])
        context["waiting"] = figures.instances_waiting(site.name)
        context["waiting_chart"] = charts.bars(
            "Suspended flow instances by what they wait for", context["waiting"]
        )
    if "unapplied" in allowed:
        context["unapplied"] = figures.unapplied(now, site.name)
    context["tiles"] = tiles(context)
    request.current_app = site.name
    return TemplateResponse(request, "admin/fedsx/dashboard.html", context)


def tiles(context: dict) -> list[tuple[figures.Figure, str, str]]:
    """The figures at the top of the page: (figure, caption, colour)."""
    shown = []
    if "inbox" in context:
        inbox = context["inbox"]
        shown += [
            (inbox.accepted, f"inbox accepted, {figures.HOURS} h", charts.colour("accepted")),
            (inbox.refused, f"inbox refused, {figures.HOURS} h", charts.colour("failed")),
        ]
    for key, noun, labels in (
        ("deliveries", "deliveries", {"pending": "", "held": "", "failed": f", {figures.HOURS} h"}),
        ("instances", "flow instances", {"suspended": "", "crashed": ""}),
    ):
        shown += [
            (f, f"{noun} {f.label}{labels[f.label]}", charts.colour(f.label))
            for f in context.get(key, [])
            if f.label in labels
        ]
    if "unapplied" in context:
        shown.append((context["unapplied"].total, "unapplied entries", "#6a1b9a"))
    return shown


def install(site: AdminSite) -> None:
    """Add the dashboard to an admin site: its URL, and a link at the top of its index
    (unless the site has an index template of its own, which can link to
    ``admin:fedsx_dashboard`` itself)."""
    if getattr(site, "_fedsx_dashboard", False):
        return
    site._fedsx_dashboard = True
    site_urls = site.get_urls

    def get_urls():
        view = site.admin_view(lambda request: dashboard(request, site))
        return [path("fedsx/dashboard/", view, name="fedsx_dashboard"), *site_urls()]

    site.get_urls = get_urls
    if site.index_template is None:
        site.index_template = "admin/fedsx/index.html"
