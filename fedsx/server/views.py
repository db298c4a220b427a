"""The standalone node's home page: what a person opening the node's address sees."""

from __future__ import annotations

from django.views.generic import TemplateView

from fedsx.conf import fedsx_settings
from fedsx.models import local_users

SHOWN_ACTORS = 100


class HomeView(TemplateView):
    template_name = "fedsx/home.html"

    def get_context_data(self, **kwargs):
        local = local_users().order_by("username")  # the instance actor is no user
        return {
            **super().get_context_data(**kwargs),
            "base_url": fedsx_settings.BASE_URL,
            "actors": local[:SHOWN_ACTORS],
            "more": max(0, local.count() - SHOWN_ACTORS),
        }
