"""Forwarded and relayed activities: signed over HTTP by someone other than their actor.

The HTTP signature only proves who sent the request (a server forwarding a reply, a relay
re-sending a post), never that the activity's actor said it. The inbox calls
``authenticate`` only then, and it accepts the activity on one of these grounds, in order:

(a) an Object Integrity Proof (FEP-8b32, ``eddsa-jcs-2022``) made with a Multikey the
    actor lists under ``assertionMethod`` (FEP-521a): it covers the JSON as it is;
(b) an ``RsaSignature2017`` Linked Data Signature by the actor's key (Mastodon's forwarded
    replies, relayed posts): what is stored is what the signature covers, and a document
    whose JSON says something else than its signed data says is refused;
(c) for a Create or Update of an object on the actor's host, or an Announce there: the
    content fetched from its origin, which is what is stored.

Anything else is refused with ``owner_mismatch``, as an unsigned forward always was.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urldefrag

from . import keys, ldsig, proofs
from .client import FetchError
from .errors import FederationError
from .fetch import fetch_json
from .models import host_of
from .vocab import PUBLIC, PUBLIC_ALIASES, as_list, id_of, ids_in

logger = logging.getLogger("fedsx.inbox")

# Activities whose content an origin serves at an id: the object's (Create, Update) or the
# activity's own (Announce).
OBJECT_FETCHED = frozenset({"Create", "Update"})
ACTIVITY_FETCHED = frozenset({"Announce"})


@dataclass(frozen=True)
class Authenticated:
    activity: dict[str, Any]  # what to store: the signed data or the origin's copy
    ground: str  # "integrity_proof" | "ld_signature" | "origin_fetch"


class OriginUnavailable(Exception):
    """The origin could not be asked just now (its budget is spent, or it did not answer):
    the inbox answers 503 so that the forwarder retries."""


def owner_mismatch(detail: str = "the signing key does not belong to the actor") -> FederationError:
    return FederationError(401, "owner_mismatch", detail)


def authenticate(activity: dict[str, Any]) -> Authenticated:
    """The activity as its actor can be shown to have said it; raises FederationError, and
    for what is worth retrying, a temporary KeyUnavailable or OriginUnavailable (which the
    inbox answers as it answers the gate's own)."""
    if "proof" in activity and _by_integrity_proof(activity):
        return Authenticated(activity, "integrity_proof")
    if ldsig.creator(activity):
        signed = _by_ld_signature(activity)
        if signed is not None:
            return Authenticated(signed, "ld_signature")
    fetched = _from_origin(activity)
    if fetched is not None:
        return Authenticated(fetched, "origin_fetch")
    raise owner_mismatch(
        "the signing key does not belong to the actor, and the activity carries no valid "
        "signature of its actor and cannot be fetched from its origin"
    )


def _unless_lasting(get: Callable[[], Any]) -> Any:
    """``get()`` from the key machinery, or None when the key is lastingly unavailable
    (gone, refused: that ground fails); a temporary unavailability propagates, and the inbox
    answers 503 so that the forwarder retries."""
    try:
        return get()
    except keys.KeyUnavailable as exc:
        if exc.temporary:
            raise
        return None


# -- (a) Object Integrity Proofs ----------------------------------------------------------


def _by_integrity_proof(activity: dict[str, Any]) -> bool:
    """Whether the activity's proof verifies with an assertion key of its actor; a stored
    key that does not verify is refetched once (the actor may have rotated it)."""
    try:
        method = proofs.proof_of(activity).get("verificationMethod")
    except proofs.ProofError:
        return False
    if not isinstance(method, str) or urldefrag(method)[0] != id_of(activity.get("actor")):
        return False  # a key of someone else than the actor
    for refetch in (False, True):
        key = _unless_lasting(lambda refetch=refetch: keys.assertion_key(method, refetch=refetch))
        if key is None:
            return False
        try:
            proofs.verify(activity, key.multibase)
        except proofs.ProofError as exc:
            if key.document is not None or exc.code != "bad_signature":
                return False  # a fresh document's key, or a proof no key can make hold
            continue
        keys.store_assertion_key(key)
        return True
    return False


# -- (b) Linked Data Signatures ------------------------------------------------------------


def _by_ld_signature(activity: dict[str, Any]) -> dict[str, Any] | None:
    """The signed data when the actor's LD signature verifies, None when there is no usable
    one (so the next ground is tried), and a refusal when the signed data is not what the
    JSON claims."""
    actor_id = id_of(activity.get("actor"))
    creator = ldsig.creator(activity)
    if host_of(creator) != host_of(actor_id):
        return None  # a key on another host is never the actor's: not worth a fetch
    key = _unless_lasting(lambda: keys.key_for(creator))
    if key is None or key.owner != actor_id:
        return None  # signed, but by someone else than the actor
    try:
        key = _verified_key(activity, ldsig.to_be_verified(activity), key)
        if key is None:
            return None
        signed = ldsig.signed_data(activity)
    except ldsig.JsonLdUnavailable as exc:
        logger.info("LD signature not checked: %s", exc)
        return None
    keys.store_verified(key)
    if (mismatch := _claims_differ(activity, signed)) is not None:
        raise FederationError(
            401,
            "ld_signature_mismatch",
            f"the LD signature does not cover what the activity says ({mismatch})",
        )
    return signed


def _verified_key(
    activity: dict[str, Any], data: bytes, key: keys.VerificationKey
) -> keys.VerificationKey | None:
    """The key the signature over ``data`` verifies with, refetching a cached key once (it
    may have rotated), or None."""
    try:
        ldsig.verify(activity, key.public_key, data)
        return key
    except ldsig.LDSignatureError:
        pass
    fresh = _unless_lasting(lambda: keys.refetch_if_stale(key))
    if fresh is None or fresh.owner != key.owner:
        return None
    try:
        ldsig.verify(activity, fresh.public_key, data)
    except ldsig.LDSignatureError:
        return None
    return fresh


def _claims(document: dict[str, Any]) -> dict[str, Any]:
    """What the inbox acts on: who did what to which object, and whose object it is."""
    inner = document.get("object")
    inner = inner if isinstance(inner, dict) else {}
    return {
        "id": id_of(document),
        "type": _types(document.get("type")),
        "actor": _ids(document.get("actor")),
        "object": _ids(document.get("object")),
        "object.type": _types(inner.get("type")),
        "object.attributedTo": _ids(inner.get("attributedTo")),
        "object.inReplyTo": _ids(inner.get("inReplyTo")),
    }


def _ids(value: Any) -> frozenset[str]:
    return frozenset(PUBLIC if ref in PUBLIC_ALIASES else ref for ref in ids_in(value))


def _types(value: Any) -> frozenset[str]:
    return frozenset(item for item in as_list(value) if isinstance(item, str))


def _claims_differ(activity: dict[str, Any], signed: dict[str, Any]) -> str | None:
    claimed, covered = _claims(activity), _claims(signed)
    return next((name for name in claimed if claimed[name] != covered[name]), None)


# -- (c) the origin's copy -----------------------------------------------------------------


def _from_origin(activity: dict[str, Any]) -> dict[str, Any] | None:
    kind, actor_id = activity.get("type"), id_of(activity.get("actor"))
    if kind in ACTIVITY_FETCHED:
        url = id_of(activity)
    elif kind in OBJECT_FETCHED:
        url = id_of(activity.get("object"))
    else:
        return None
    # Only the actor's own server speaks for it: the id fetched must be there.
    origin = host_of(actor_id)
    if not url or host_of(url) != origin:
        return None
    # Each forward costs a GET signed by our instance actor: rate-limited per host, so
    # forwarders (repeating themselves, or not) cannot make the node hammer a server.
    if not keys.origin_fetch_budget.take(origin):
        raise OriginUnavailable(f"too many fetches from {origin} just now")
    try:
        document = fetch_json(url)
    except FetchError as exc:
        if exc.temporary:
            raise OriginUnavailable(exc.detail) from None
        raise owner_mismatch(
            f"the activity is not signed by its actor and its origin did not serve it ({exc.code})"
        ) from None
    if kind in ACTIVITY_FETCHED:
        return _same_activity(activity, document)
    return _with_fetched_object(activity, document)


def _origin_refused(what: str) -> FederationError:
    return FederationError(401, "origin_mismatch", f"the origin serves another {what} at that id")


def _same_activity(activity: dict[str, Any], fetched: dict[str, Any]) -> dict[str, Any]:
    if (
        id_of(fetched) != id_of(activity)
        or fetched.get("type") != activity.get("type")
        or id_of(fetched.get("actor")) != id_of(activity.get("actor"))
    ):
        raise _origin_refused("activity")
    return fetched


def _with_fetched_object(activity: dict[str, Any], fetched: dict[str, Any]) -> dict[str, Any]:
    """The Create or Update around the origin's object, addressed as the object is: nothing
    of the forwarded copy is kept but its type and actor, which the origin confirms.

    Nor its id: the origin confirmed the object, not that the actor's activity carries that
    id, and activities are looked up by (id, actor), so a forwarder choosing it could claim
    an id the actor uses later (its Delete, say) and make that a "repeat". Kept without an
    id, the copy is deduplicated by its content. Fetching the activity at its id as well
    would cost a second GET per forward and fails where servers serve no activities."""
    actor_id = id_of(activity.get("actor"))
    object_id = id_of(activity.get("object"))
    # An object's author is its attributedTo: not an activity's actor (a Create must not
    # wrap the actor's Follow, say), nor the actor itself but for an Update of it.
    its_own = activity.get("type") == "Update" and id_of(fetched) == actor_id
    owned = actor_id in ids_in(fetched.get("attributedTo"))
    if id_of(fetched) != object_id or not (its_own or owned):
        raise _origin_refused("object")
    stored = {key: activity[key] for key in ("@context", "type", "actor") if key in activity}
    stored["object"] = fetched
    for field in ("to", "cc", "audience", "published"):
        if field in fetched:
            stored[field] = fetched[field]
    return stored
