"""Django model permissions per resource: the operator's admin rights are their API rights.

DRF's ``DjangoModelPermissions`` lets any authenticated user read; here GET (and HEAD) need
``view_<model>`` too. An action that is not plain CRUD says which kind it needs with
``action_permissions`` on the viewset, e.g. ``{"retry": "change"}``. Anonymous requests are
refused (401).
"""

from __future__ import annotations

from rest_framework.permissions import DjangoModelPermissions

PERMISSION_KINDS = ("view", "add", "change", "delete")


class ModelPermissions(DjangoModelPermissions):
    perms_map = {
        **DjangoModelPermissions.perms_map,
        "GET": ["%(app_label)s.view_%(model_name)s"],
        "HEAD": ["%(app_label)s.view_%(model_name)s"],
    }

    def has_permission(self, request, view) -> bool:
        if not (request.user and request.user.is_authenticated):
            return False
        kind = getattr(view, "action_permissions", {}).get(getattr(view, "action", None))
        if kind is None:
            return super().has_permission(request, view)
        if kind not in PERMISSION_KINDS:
            raise ValueError(f"unknown permission kind {kind!r} on {type(view).__name__}")
        model = self._queryset(view).model
        return request.user.has_perm(f"{model._meta.app_label}.{kind}_{model._meta.model_name}")

    def _queryset(self, view):
        # Only the model matters here: the view's class-level queryset names it without a
        # query, so a nested resource (an actor's inbox) is not looked up, and answered
        # 404, before the caller is known to be allowed to see it.
        queryset = getattr(view, "queryset", None)
        return queryset if queryset is not None else super()._queryset(view)
