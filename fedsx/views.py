"""Discovery endpoints: actor documents, WebFinger, NodeInfo, outbox and follow collections."""

from __future__ import annotations

import json

from django.utils.cache import patch_vary_headers
from rest_framework.renderers import JSONRenderer, TemplateHTMLRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from . import __version__, media
from .actors import instance_actor
from .collections import ordered_collection
from .conf import fedsx_settings
from .documents import actor_document, minimal_actor_document, webfinger_document
from .errors import bad_request, exception_handler, not_found
from .models import Actor, Follow, OutboxEntry, host_of, instance_actor_id, local_users
from .negotiation import FixedContentNegotiation
from .permissions import AuthorizedFetch, verified_fetcher
from .renderers import ActivityJSONRenderer, JRDRenderer, LDJSONRenderer, NodeInfoRenderer

AP_RENDERERS = [ActivityJSONRenderer, LDJSONRenderer, JSONRenderer]


class FederationView(APIView):
    """A public federation endpoint, the same whatever the host project's REST_FRAMEWORK
    defaults say: no authentication, permission or throttle classes (a host requiring login
    for its own API must not shut out other servers) and errors in the ``{"error",
    "detail"}`` shape.
    """

    authentication_classes: list = []
    permission_classes: list = []
    # Rate limits on federation belong in front of the node (proxy), where they can tell
    # servers apart; a host's anonymous-user throttle would starve whole instances.
    throttle_classes: list = []
    renderer_classes = AP_RENDERERS

    def get_exception_handler(self):
        return exception_handler

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        if fedsx_settings.AUTHORIZED_FETCH:
            # What is served depends on the signature: no cache may answer one with another's.
            patch_vary_headers(response, ["Signature"])
        return response


class SignedFetchView(FederationView):
    """Activities, objects and collections: signed GETs only under AUTHORIZED_FETCH."""

    permission_classes = [AuthorizedFetch]


def local_actor_or_404(name: str) -> Actor:
    actor = Actor.objects.filter(is_local=True, username=name).first()
    if actor is None:
        raise not_found(f"no local actor named {name!r}")
    return actor


class ActorView(FederationView):
    """The actor document; a browser asking for HTML gets the profile page."""

    renderer_classes = [*AP_RENDERERS, TemplateHTMLRenderer]
    template_name = "fedsx/actor.html"

    def get(self, request: Request, name: str | None = None) -> Response:
        # No name: the instance actor, at /actor (made here if no fetch has made it yet).
        actor = instance_actor() if name is None else local_actor_or_404(name)
        if isinstance(request.accepted_renderer, TemplateHTMLRenderer):
            return Response({"actor": actor, "document": actor_document(actor)})
        if self._answers_minimally(request, actor):
            return Response(minimal_actor_document(actor))
        return Response(actor_document(actor))

    @staticmethod
    def _answers_minimally(request: Request, actor: Actor) -> bool:
        """Under AUTHORIZED_FETCH, a request not validly signed by an unblocked server gets
        the keys and the inbox only (as Mastodon answers it), so that the key fetch which
        precedes every signature check keeps working. The instance actor is always whole:
        it is what other servers fetch to check the node's own signed GETs."""
        if not fedsx_settings.AUTHORIZED_FETCH or actor.is_instance:
            return False
        return verified_fetcher(request._request) is None


def _page_args(request: Request) -> tuple[bool, int | None]:
    page = request.query_params.get("page") in {"true", "1"}
    before = request.query_params.get("before")
    if before is None:
        return page, None
    try:
        return page, int(before)
    except ValueError:
        raise bad_request("bad_cursor", "before must be an integer") from None


class OutboxView(SignedFetchView):
    def get(self, request: Request, name: str | None = None) -> Response:
        actor = instance_actor() if name is None else local_actor_or_404(name)
        page, before = _page_args(request)
        entries = OutboxEntry.objects.filter(actor=actor, public=True).select_related("activity")
        return Response(
            ordered_collection(
                actor.outbox_url,
                entries,
                cursor_field="seq",
                item=lambda entry: entry.activity.payload,
                page=page,
                before=before,
            )
        )


class PostedView(SignedFetchView):
    """A posted activity (``kind="activities"``) or an object it created (``"objects"``),
    served at its id. Only public ones are shown: a followers-only or direct post is a
    404, as if it did not exist, to anyone who cannot prove they were addressed."""

    renderer_classes = [*AP_RENDERERS, TemplateHTMLRenderer]
    template_name = "fedsx/activity.html"
    kind = "activities"

    def get(self, request: Request, name: str, uuid: str) -> Response:
        actor = local_actor_or_404(name)
        url = f"{actor.ap_id}/{self.kind}/{uuid}"
        entries = OutboxEntry.objects.filter(actor=actor, public=True).select_related("activity")
        if self.kind == "activities":
            entry = entries.filter(activity__ap_id=url).first()
            document = entry.activity.payload if entry else None
        else:
            entry = entries.filter(activity__type="Create", activity__object_id=url).first()
            document = entry.activity.payload.get("object") if entry else None
        if not isinstance(document, dict):
            raise not_found(f"nothing public at {url}")
        status = 200
        if self.kind == "objects":
            document, status = _unless_deleted(actor, url, document)
        if isinstance(request.accepted_renderer, TemplateHTMLRenderer):
            pretty = json.dumps(document, indent=2, ensure_ascii=False)
            kind = document.get("type", "")
            context = {"actor": actor, "document": document, "pretty": pretty, "kind": kind}
            return Response(context, status=status)
        if "@context" not in document:
            document = {"@context": media.AS_CONTEXT, **document}
        return Response(document, status=status)


def _unless_deleted(actor, url: str, document: dict) -> tuple[dict, int]:
    """An object its author has since deleted is a Tombstone, answered 410 Gone (as
    Mastodon does), so a peer that dereferences it drops its copy."""
    deleted = (
        OutboxEntry.objects.filter(actor=actor, activity__type="Delete", activity__object_id=url)
        .select_related("activity")
        .first()
    )
    if deleted is None:
        return document, 200
    tombstone = {
        "id": url,
        "type": "Tombstone",
        "formerType": document.get("type", ""),
        "deleted": deleted.activity.payload.get("published", ""),
    }
    return tombstone, 410


class FollowCollectionView(SignedFetchView):
    """``followers`` or ``following``: accepted follows, as actor ids."""

    direction = "followers"

    def get(self, request: Request, name: str) -> Response:
        actor = local_actor_or_404(name)
        page, before = _page_args(request)
        accepted = Follow.objects.filter(state=Follow.State.ACCEPTED)
        if self.direction == "followers":
            rows, url = (
                accepted.filter(following=actor).select_related("follower"),
                actor.followers_url,
            )
            item = lambda follow: follow.follower.ap_id  # noqa: E731
        else:
            rows, url = (
                accepted.filter(follower=actor).select_related("following"),
                actor.following_url,
            )
            item = lambda follow: follow.following.ap_id  # noqa: E731
        return Response(
            ordered_collection(url, rows, cursor_field="id", item=item, page=page, before=before)
        )


class WebFingerView(FederationView):
    content_negotiation_class = FixedContentNegotiation
    renderer_classes = [JRDRenderer, JSONRenderer]

    def get(self, request: Request) -> Response:
        resource = request.query_params.get("resource", "").strip()
        if not resource:
            raise bad_request("bad_resource", "the resource parameter is required")
        lookup = self._lookup(resource)
        actor = Actor.objects.filter(is_local=True, **lookup).first()
        if actor is None and self._names_the_node(lookup):
            actor = instance_actor()
        if actor is None:
            raise not_found(f"no local actor for {resource!r}")
        return Response(webfinger_document(actor), headers={"Access-Control-Allow-Origin": "*"})

    @staticmethod
    def _names_the_node(lookup: dict[str, str]) -> bool:
        """acct:<domain>@<domain> (as Mastodon answers for its instance actor) or its id. A
        user of that name, should one exist, is found first."""
        node = host_of(fedsx_settings.BASE_URL)
        return lookup in ({"username": node}, {"ap_id": instance_actor_id()})

    @staticmethod
    def _lookup(resource: str) -> dict[str, str]:
        if resource.startswith(("http://", "https://")):
            return {"ap_id": resource}
        if not resource.startswith("acct:"):
            raise bad_request("bad_resource", "resource must be acct:name@host or an actor URL")
        name, sep, host = resource[len("acct:") :].lstrip("@").rpartition("@")
        if not sep or not name or not host:
            raise bad_request("bad_resource", "resource must look like acct:name@host")
        if host.lower() != host_of(fedsx_settings.BASE_URL):
            raise not_found(f"{host!r} is not this node")
        return {"username": name}


class NodeInfoDiscoveryView(FederationView):
    content_negotiation_class = FixedContentNegotiation
    renderer_classes = [JSONRenderer]

    def get(self, request: Request) -> Response:
        return Response(
            {
                "links": [
                    {
                        "rel": media.NODEINFO_21_SCHEMA,
                        "href": f"{fedsx_settings.BASE_URL}/nodeinfo/2.1",
                    }
                ]
            }
        )


class NodeInfoView(FederationView):
    content_negotiation_class = FixedContentNegotiation
    renderer_classes = [NodeInfoRenderer, JSONRenderer]

    def get(self, request: Request) -> Response:
        users = local_users().count()  # the instance actor is the node, not a user
        posts = OutboxEntry.objects.filter(actor__is_local=True).count()
        return Response(
            {
                "version": "2.1",
                "software": {
                    "name": "fedsx",
                    "version": __version__,
                    "repository": "https://github.com/fedsx/fedsx",
                },
                "protocols": ["activitypub"],
                "services": {"inbound": [], "outbound": []},
                "openRegistrations": fedsx_settings.OPEN_REGISTRATIONS,
                "usage": {
                    "users": {"total": users, "activeMonth": users, "activeHalfyear": users},
                    "localPosts": posts,
                },
                "metadata": {"nodeName": fedsx_settings.NODE_NAME},
            }
        )
