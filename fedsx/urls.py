"""The plugin's federation endpoints; include them at the root of the host's URLconf."""

from django.urls import include, path

from . import views
from .inbox import InboxView
from .metrics.views import metrics_view

urlpatterns = [
    # The inbox first: nearly every request a node gets is a delivery.
    path("inbox", InboxView.as_view(), name="shared-inbox"),
    path("actors/<str:name>/inbox", InboxView.as_view(), name="inbox"),
    # The instance actor's inbox is the shared one, as Mastodon's.
    path("actor/inbox", InboxView.as_view(), name="instance-actor-inbox"),
    path(".well-known/webfinger", views.WebFingerView.as_view(), name="webfinger"),
    path(".well-known/nodeinfo", views.NodeInfoDiscoveryView.as_view(), name="nodeinfo-discovery"),
    path("nodeinfo/2.1", views.NodeInfoView.as_view(), name="nodeinfo"),
    path("metrics", metrics_view, name="metrics"),
    # The node's own actor: it signs the node's fetches (fedsx.actors.instance_actor).
    path("actor", views.ActorView.as_view(), name="instance-actor"),
    path("actor/outbox", views.OutboxView.as_view(), name="instance-actor-outbox"),
    path("actors/<str:name>", views.ActorView.as_view(), name="actor"),
    path("actors/<str:name>/outbox", views.OutboxView.as_view(), name="outbox"),
    path(
        "actors/<str:name>/activities/<str:uuid>",
        views.PostedView.as_view(kind="activities"),
        name="activity",
    ),
    path(
        "actors/<str:name>/objects/<str:uuid>",
        views.PostedView.as_view(kind="objects"),
        name="object",
    ),
    path(
        "actors/<str:name>/followers",
        views.FollowCollectionView.as_view(direction="followers"),
        name="followers",
    ),
    path(
        "actors/<str:name>/following",
        views.FollowCollectionView.as_view(direction="following"),
        name="following",
    ),
]

# The operator API (fedsx.api) at /api/v1/. A host project mounting it elsewhere, or not at
# all, includes ``fedsx.urls.federation`` instead of this module.
federation = list(urlpatterns)
urlpatterns = [*federation, path("api/v1/", include("fedsx.api.urls"))]
