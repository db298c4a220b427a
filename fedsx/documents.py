"""The JSON documents this node serves about its local actors."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import media
from .models import Actor

# Asked whether a Follow of this actor would be held for someone's approval (the triggers
# app registers one: a trigger on Follow starting the approval flow); the kernel itself
# holds nothing.
follow_policies: list[Callable[[Actor], bool]] = []


def approves_manually(actor: Actor) -> bool:
    return any(policy(actor) for policy in follow_policies)


def actor_document(actor: Actor) -> dict[str, Any]:
    document: dict[str, Any] = {
        "@context": [media.AS_CONTEXT, media.SECURITY_CONTEXT],
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
    if actor.is_instance:
        # As Mastodon's instance actor: no one follows the node itself (it approves no
        # one) and it has no follow collections.
        del document["followers"], document["following"]
        document["manuallyApprovesFollowers"] = True
    return document


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
