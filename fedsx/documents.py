"""The JSON documents this node serves about its local actors."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import media
from .models import Actor
from .proofs import DATA_INTEGRITY_CONTEXT, MULTIKEY_CONTEXT

# The actor document's JSON-LD context: ActivityStreams, publicKey (security/v1), the
# Multikey (multikey/v1) and proofs (data-integrity/v1), as Mitra and Fedify publish them, and
# the terms neither defines, as Mastodon defines them (assertionMethod as in did/v1, which is
# not included whole: its protected terms clash with security/v1's under strict processing).
ACTOR_CONTEXT = [
    media.AS_CONTEXT,
    media.SECURITY_CONTEXT,
    DATA_INTEGRITY_CONTEXT,
    MULTIKEY_CONTEXT,
    {
        "manuallyApprovesFollowers": "as:manuallyApprovesFollowers",
        "toot": "http://joinmastodon.org/ns#",
        "discoverable": "toot:discoverable",
        "indexable": "toot:indexable",
        "assertionMethod": {
            "@id": "https://w3id.org/security#assertionMethod",
            "@type": "@id",
            "@container": "@set",
        },
    },
]

# Asked whether a Follow of this actor would be held for someone's approval (the triggers
# app registers one: a trigger on Follow starting the approval flow); the kernel itself
# holds nothing.
follow_policies: list[Callable[[Actor], bool]] = []


def approves_manually(actor: Actor) -> bool:
    return any(policy(actor) for policy in follow_policies)


def actor_document(actor: Actor) -> dict[str, Any]:
    document: dict[str, Any] = {
        "@context": ACTOR_CONTEXT,
        "id": actor.ap_id,
        "type": actor.actor_type,
        "preferredUsername": actor.preferred_username,
        "name": actor.name or actor.preferred_username,
        "summary": actor.summary,
        "url": actor.ap_id,
        "inbox": actor.inbox_url,
        "outbox": actor.outbox_url,
        "followers": actor.followers_url,
        "following": actor.following_url,
        "manuallyApprovesFollowers": approves_manually(actor),
        # Listed in directories, but not opted into full-text search (Mastodon's default
        # for a new account is the same pair).
        "discoverable": True,
        "indexable": False,
        "published": actor.created_at.isoformat(timespec="seconds").replace("+00:00", "Z"),
        "endpoints": {"sharedInbox": actor.shared_inbox_url},
        "publicKey": {
            "id": actor.key_id,
            "owner": actor.ap_id,
            "publicKeyPem": actor.public_key_pem,
        },
    }
    if actor.ed25519_public_key:
        document["assertionMethod"] = [multikey(actor)]
    if actor.icon_url:
        document["icon"] = icon(actor)
    if actor.is_instance:
        # As Mastodon's instance actor: no one follows the node itself (it approves no
        # one) and it has no follow collections.
        del document["followers"], document["following"]
        document["manuallyApprovesFollowers"] = True
    return document


def multikey(actor: Actor) -> dict[str, str]:
    """The actor's Ed25519 key as a FEP-521a Multikey: it verifies the actor's proofs."""
    return {
        "id": actor.multikey_id,
        "type": "Multikey",
        "controller": actor.ap_id,
        "publicKeyMultibase": actor.ed25519_public_key,
    }


def icon(actor: Actor) -> dict[str, str]:
    image = {"type": "Image", "url": actor.icon_url}
    if actor.icon_media_type:
        image["mediaType"] = actor.icon_media_type
    return image


# What an unsigned request gets under AUTHORIZED_FETCH (as Mastodon answers it): enough to
# verify the actor's signatures and proofs and to reach its inbox, nothing about the person.
MINIMAL_FIELDS = (
    "@context",
    "id",
    "type",
    "preferredUsername",
    "inbox",
    "outbox",
    "endpoints",
    "publicKey",
    "assertionMethod",
)


def minimal_actor_document(actor: Actor) -> dict[str, Any]:
    document = actor_document(actor)
    return {name: document[name] for name in MINIMAL_FIELDS if name in document}


def webfinger_document(actor: Actor) -> dict[str, Any]:
    return {
        "subject": f"acct:{actor.preferred_username}@{actor.domain}",
        "aliases": [actor.ap_id],
        "links": [
            {"rel": "self", "type": media.ACTIVITY_JSON, "href": actor.ap_id},
            {
                "rel": "http://webfinger.net/rel/profile-page",
                "type": "text/html",
                "href": actor.ap_id,
            },
        ],
    }
