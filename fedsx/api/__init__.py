"""The operator REST API (Django REST framework), mounted at ``/api/v1/`` by ``fedsx.urls``.

How an app contributes its resources
------------------------------------
Every installed app may have a module (or package) named ``api`` with a function
``register(router)``; ``fedsx.api.urls`` calls it once, at URLconf load, with the API's
router (a DRF ``DefaultRouter``)::

    # flows/api.py
    def register(router) -> None:
        from .viewsets import FlowInstanceViewSet  # import views here, not at module level

        router.register("flow-instances", FlowInstanceViewSet, basename="flow-instance")

The kernel's own resources are registered by ``register`` in this package.

A resource's viewset subclasses ``fedsx.api.viewsets.ApiViewSet`` (or mixes in
``ApiView``): it then carries the API's token and session authentication, Django model
permissions (view/add/change/delete, see ``permissions``), cursor pagination, django-filter
filtering, JSON errors (``exceptions``; raise ``exceptions.Conflict(code, detail)`` for a
refusal of the store, answered 409) and the OpenAPI schema class that documents the error
responses (``schema``). Nothing here changes the host project's ``REST_FRAMEWORK`` defaults:
the federation endpoints keep their own public base (``fedsx.views.FederationView``).

A host project mounts the API elsewhere with ``path("ops/", include("fedsx.api.urls"))``
next to ``fedsx.urls.federation``, or leaves it out by including only the latter.
"""

from __future__ import annotations


def register(router) -> None:
    """The kernel's resources (actors, activities, logs, deliveries, hosts, blocks)."""
    from .activities import ActivityViewSet
    from .actors import ActorViewSet, InboxViewSet, OutboxViewSet
    from .blocks import DomainBlockViewSet
    from .deliveries import DeliveryViewSet, HostViewSet

    router.register("actors", ActorViewSet, basename="actor")
    router.register(r"actors/(?P<name>[^/]+)/inbox", InboxViewSet, basename="actor-inbox")
    router.register(r"actors/(?P<name>[^/]+)/outbox", OutboxViewSet, basename="actor-outbox")
    router.register("activities", ActivityViewSet, basename="activity")
    router.register("deliveries", DeliveryViewSet, basename="delivery")
    router.register("hosts", HostViewSet, basename="host")
    router.register("domain-blocks", DomainBlockViewSet, basename="domain-block")
