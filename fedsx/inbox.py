"""The inbox: the node's front door. Nothing unverified gets past it.

``POST /actors/<name>/inbox`` and ``POST /inbox`` (shared) run the gate in this order, and
the first failure answers a 4xx JSON error with nothing stored:

    size → content type → recipient → signature present → body digest → signed Host is
    this node → JSON (and its content id) → blocked domain → key (cache, database, fetch) →
    signature → key owner == actor, or else the actor's own proof of a forwarded
    activity (fedsx.forwarded) → append

This is a plain Django view rather than a DRF one: it is the hot path, and it answers
nothing but small JSON errors.
"""

from __future__ import annotations

import logging
import time
from typing import Any
from urllib.parse import urldefrag, urlsplit

import orjson
from django.db.models import Q
from django.db.models.signals import post_delete
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views import View
from django.views.decorators.csrf import csrf_exempt

from . import forwarded, httpsig, keys, metrics
from .blocks import is_blocked
from .cid import CanonicalizationError, activity_cid
from .conf import fedsx_settings
from .errors import FederationError, error_body
from .kernel import append_inbox
from .models import Actor, InboxTally, host_of
from .tallies import inbox_tally
from .vocab import id_of

logger = logging.getLogger("fedsx.inbox")

MAX_ID_LENGTH = 500  # the id columns' size
ACCEPTED_CONTENT_TYPES = {"application/activity+json", "application/ld+json", "application/json"}


def json_response(status: int, body: dict[str, Any], headers: dict | None = None) -> HttpResponse:
    response = HttpResponse(orjson.dumps(body), status=status, content_type="application/json")
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def error_response(rejection: FederationError) -> HttpResponse:
    response = json_response(
        rejection.status_code,
        error_body(rejection.code, str(rejection.detail)),
        rejection.headers,
    )
    response._has_been_logged = True  # logged once by the view, with its reason: not again
    return response


def accepted(detail: str = "accepted", outcome: str = InboxTally.ACCEPTED) -> HttpResponse:
    response = json_response(202, {"status": detail})
    response.inbox_outcome = outcome  # what the view counts it as
    return response


def count(outcome: str, status: int) -> None:
    """Each answer of the inbox counted once: for the dashboard's hourly tally and for
    /metrics (where a 401 is also a signature failure)."""
    inbox_tally.add(outcome)
    if status == 202:
        metrics.inbox_accepted(outcome)
    else:
        metrics.inbox_refused(outcome, status)


class InboxView(View):
    http_method_names = ["post"]

    @classmethod
    def as_view(cls, **initkwargs):
        # Exempt once here: method_decorator on dispatch would rebuild a wrapper per request.
        return csrf_exempt(super().as_view(**initkwargs))

    def post(self, request: HttpRequest, name: str | None = None) -> HttpResponse:
        try:
            response = receive(request, name)
        except FederationError as rejection:
            logger.info(
                "inbox refused %s %s: %s", rejection.status_code, rejection.code, rejection.detail
            )
            count(rejection.code, rejection.status_code)
            return error_response(rejection)
        except Exception:
            # Never a traceback to a peer; a 503 makes the sender retry, so nothing is lost.
            logger.exception("inbox failed unexpectedly")
            count("internal_error", 503)
            return error_response(
                retry_later("internal_error", "the node could not take the activity; retry later")
            )
        count(response.inbox_outcome, 202)
        return response

    def http_method_not_allowed(self, request, *args, **kwargs) -> HttpResponse:
        count("method_not_allowed", 405)
        response = error_response(
            FederationError(405, "method_not_allowed", "an inbox only accepts POST")
        )
        response["Allow"] = "POST"
        return response


def receive(request: HttpRequest, name: str | None) -> HttpResponse:
    body = read_body(request)
    check_content_type(request)
    recipient = local_recipient(name) if name is not None else None
    signed = signed_request(request, body)
    signature = parse_signature(signed)
    check_digest(signed)
    check_addressed_to_us(signed)
    activity = parse_activity(body)
    cid = content_id(activity)
    actor_id = id_of(activity.get("actor"))
    check_not_blocked(signature.key_id, actor_id)
    if is_unknown_actor_deleting_itself(activity, signature.key_id):
        # Nothing of it here to drop: answered without a fetch, as deleted accounts' Deletes
        # come in floods and their keys are gone anyway. Nothing is stored.
        return accepted("unknown actor deleted", InboxTally.ACTOR_GONE)
    try:
        key = keys.key_for(signature.key_id)
    except keys.KeyUnavailable as exc:
        if exc.gone and is_self_delete(activity, signature.key_id):
            return accepted(
                "actor deleted", InboxTally.ACTOR_GONE
            )  # the common Delete flood: nothing to store
        raise key_rejection(exc) from None
    key = verify(signed, signature, key)
    forwarded_by = ""
    if key.owner != actor_id:
        # Forwarded or relayed: the sender is not the actor (fedsx.forwarded).
        authenticated = authenticated_forward(activity)
        if authenticated is not activity:  # the signed data, or the origin's copy
            activity, cid = authenticated, content_id(authenticated)
        forwarded_by = key.owner
    # None: the shared inbox's recipients, which the append finds from the addressing.
    recipients = [recipient] if recipient is not None else None
    append_inbox(activity, recipients, cid=cid, forwarded_by=forwarded_by)
    return accepted()


def read_body(request: HttpRequest) -> bytes:
    limit = fedsx_settings.MAX_BODY_BYTES
    declared = request.META.get("CONTENT_LENGTH") or "0"
    if not declared.isdigit():
        raise FederationError(400, "bad_content_length", "Content-Length is not a number")
    if int(declared) > limit:
        raise FederationError(413, "too_large", f"bodies are limited to {limit} bytes")
    body = request.read(limit + 1)
    if len(body) > limit:
        raise FederationError(413, "too_large", f"bodies are limited to {limit} bytes")
    return body


def check_content_type(request: HttpRequest) -> None:
    if request.content_type not in ACCEPTED_CONTENT_TYPES:
        raise FederationError(
            415,
            "unsupported_media_type",
            "send application/activity+json, application/ld+json or application/json",
        )


# Local actors by name, so the hot path spares a query; a new actor is found at once (a
# miss queries), a deleted one is forgotten within LOCAL_ACTOR_SECONDS.
LOCAL_ACTOR_SECONDS = 30.0
_local_actors: dict[str, tuple[Actor, float]] = {}


@receiver(post_delete, sender=Actor)
def _forget_local_actor(instance: Actor, **kwargs) -> None:
    _local_actors.pop(instance.username, None)


def local_recipient(name: str) -> Actor:
    cached = _local_actors.get(name)
    if cached and time.monotonic() - cached[1] < LOCAL_ACTOR_SECONDS:
        return cached[0]
    actor = Actor.objects.filter(is_local=True, username=name).only("id", "ap_id").first()
    if actor is None:
        raise FederationError(404, "not_found", f"no local actor named {name!r}")
    if len(_local_actors) > 10_000:
        _local_actors.clear()
    _local_actors[name] = (actor, time.monotonic())
    return actor


def signed_request(request: HttpRequest, body: bytes) -> httpsig.HttpRequest:
    # The raw request target and header values as sent: that is what was signed.
    return httpsig.HttpRequest.from_wsgi(request.META, body)


def parse_signature(signed: httpsig.HttpRequest) -> httpsig.ParsedSignature:
    try:
        return httpsig.parse_signature(signed)
    except httpsig.SignatureError as exc:
        raise FederationError(401, exc.code, exc.detail) from None


def check_digest(signed: httpsig.HttpRequest) -> None:
    try:
        httpsig.verify_digest(signed)
    except httpsig.SignatureError as exc:
        status = 400 if exc.code == "digest_mismatch" else 401
        raise FederationError(status, exc.code, exc.detail) from None


def check_addressed_to_us(signed: httpsig.HttpRequest) -> None:
    """The signed Host (draft-cavage ``host``, RFC 9421 ``@authority``) must be this node:
    otherwise a delivery signed for another server could be replayed to us."""
    base = fedsx_settings.BASE_URL
    scheme = urlsplit(base).scheme or "https"
    if host_of(f"{scheme}://{signed.headers.get('host', '')}") != host_of(base):
        raise FederationError(401, "wrong_host", "the request is addressed to another host")


def parse_activity(body: bytes) -> dict[str, Any]:
    try:
        activity = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise FederationError(400, "malformed_json", "the body is not valid JSON") from None
    if not isinstance(activity, dict):
        raise FederationError(400, "not_an_object", "an activity is a JSON object")
    if b"\\u0000" in body:  # valid JSON, but no database stores a NUL in text
        raise FederationError(400, "unsupported_content", "strings may not contain U+0000")
    if not isinstance(activity.get("type"), str) or not activity["type"]:
        raise FederationError(400, "missing_type", "the activity has no type")
    if not id_of(activity.get("actor")):
        raise FederationError(400, "missing_actor", "the activity has no actor")
    if len(id_of(activity)) > MAX_ID_LENGTH or len(id_of(activity.get("actor"))) > MAX_ID_LENGTH:
        raise FederationError(400, "id_too_long", f"ids are limited to {MAX_ID_LENGTH} characters")
    return activity


def content_id(activity: dict[str, Any]) -> str:
    try:
        return activity_cid(activity)
    except CanonicalizationError as exc:
        raise FederationError(
            400, "unsupported_json", f"the activity has no canonical form: {exc}"
        ) from None


def check_not_blocked(key_id: str, actor_id: str) -> None:
    for host in {host_of(key_id), host_of(actor_id)}:
        if is_blocked(host):
            raise FederationError(403, "domain_blocked", "deliveries from this domain are refused")


def is_self_delete(activity: dict[str, Any], key_id: str) -> bool:
    """A Delete of the signing actor itself, signed with one of its own keys."""
    actor_id = id_of(activity.get("actor"))
    key_url = urldefrag(key_id)[0]
    return (
        activity.get("type") == "Delete"
        and bool(actor_id)
        and id_of(activity.get("object")) == actor_id
        and (key_url == actor_id or key_url.startswith(actor_id + "/"))
    )


def is_unknown_actor_deleting_itself(activity: dict[str, Any], key_id: str) -> bool:
    """A self-Delete from an actor the node holds neither as an actor nor by its key."""
    return is_self_delete(activity, key_id) and not (
        Actor.objects.filter(Q(ap_id=id_of(activity.get("actor"))) | Q(key_id=key_id)).exists()
    )


def retry_later(code: str, detail: str) -> FederationError:
    """A 503 with Retry-After: nothing is wrong with the delivery, so the sender retries."""
    return FederationError(
        503, code, detail, {"Retry-After": str(fedsx_settings.RETRY_AFTER_SECONDS)}
    )


def key_rejection(exc: keys.KeyUnavailable) -> FederationError:
    if exc.temporary:
        return retry_later("key_unavailable", f"the signing key could not be fetched: {exc.detail}")
    code = exc.code if exc.code.startswith("key_") else f"key_{exc.code}"
    return FederationError(401, code, exc.detail)


def authenticated_forward(activity: dict[str, Any]) -> dict[str, Any]:
    """The forwarded activity as its actor said it (fedsx.forwarded), through the same
    checks as a body; its key and origin failures answered as the gate's own."""
    try:
        authenticated = forwarded.authenticate(activity)
    except keys.KeyUnavailable as exc:
        raise key_rejection(exc) from None
    except forwarded.OriginUnavailable as exc:
        raise retry_later(
            "origin_unavailable", f"the activity's origin could not be asked: {exc}"
        ) from None
    logger.info("forwarded %s accepted on %s", id_of(activity), authenticated.ground)
    if authenticated.activity is activity:
        return activity  # a proof covers the body as it came: checked already
    return parse_activity(orjson.dumps(authenticated.activity))


def verify(
    signed: httpsig.HttpRequest, signature: httpsig.ParsedSignature, key: keys.VerificationKey
) -> keys.VerificationKey:
    """Verify, refetching the key once if it may have been rotated."""
    options = {
        "now": timezone.now(),
        "max_skew": fedsx_settings.MAX_CLOCK_SKEW_SECONDS,
        "max_age": fedsx_settings.MAX_SIGNATURE_AGE_SECONDS,
        "scheme": urlsplit(fedsx_settings.BASE_URL).scheme or "https",
    }
    try:
        httpsig.verify_request(signed, signature, key.public_key, **options)
        return keys.store_verified(key)
    except httpsig.SignatureError as exc:
        if exc.code != "bad_signature":
            raise FederationError(401, exc.code, exc.detail) from None
        first_error = exc
    try:
        fresh = keys.refetch_if_stale(key)
    except keys.KeyUnavailable as exc:
        raise key_rejection(exc) from None
    if fresh is None:
        raise FederationError(401, first_error.code, first_error.detail)
    try:
        httpsig.verify_request(signed, signature, fresh.public_key, **options)
    except httpsig.SignatureError as exc:
        raise FederationError(401, exc.code, exc.detail) from None
    return keys.store_verified(fresh)
