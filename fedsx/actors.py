"""Creating local actors, and the node's own: the instance actor.

The instance actor (``instance_actor()``) is a local ``Application`` actor that is the
node itself, served at ``<BASE_URL>/actor`` as Mastodon serves its own. Its key signs the
node's GETs (key fetches, actor documents, WebFinger: ``fedsx.client.get``), so servers
that answer only signed fetches (GoToSocial; Mastodon in authorized-fetch mode) answer us,
and they can check the signature without any user of ours being involved. It is created
on first use; it is no user: not listed, not counted, and it never posts or follows.
"""

from __future__ import annotations

from django.db import IntegrityError, transaction

from .crypto import generate_rsa_keypair
from .models import INSTANCE_USERNAME, Actor, instance_actor_id, validate_username
from .proofs import generate_keypair


class ActorExists(Exception):
    pass


def create_local_actor(
    username: str,
    *,
    name: str = "",
    exists_ok: bool = False,
    icon_url: str = "",
    icon_media_type: str = "",
) -> Actor:
    """A new local actor with a fresh RSA-2048 key pair (HTTP signatures) and Ed25519 key
    pair (Object Integrity Proofs), and an icon if given.

    With ``exists_ok`` an existing actor is returned instead, its ids re-derived from the
    current BASE_URL (so a node moved to another origin or port keeps working) and its icon
    replaced if one is given.
    """
    validate_username(username)
    existing = Actor.objects.filter(is_local=True, username=username).first()
    if existing is not None:
        if not exists_ok:
            raise ActorExists(f"a local actor named {username!r} already exists")
        existing.set_local_urls()
        if icon_url:
            existing.icon_url, existing.icon_media_type = icon_url, icon_media_type
        existing.save()
        return existing
    private_pem, public_pem = generate_rsa_keypair()
    ed25519_private, ed25519_public = generate_keypair()
    actor = Actor(
        username=username,
        name=name,
        is_local=True,
        private_key_pem=private_pem,
        public_key_pem=public_pem,
        ed25519_private_key=ed25519_private,
        ed25519_public_key=ed25519_public,
        icon_url=icon_url,
        icon_media_type=icon_media_type,
    )
    actor.set_local_urls()
    try:
        with transaction.atomic():
            actor.save()
    except IntegrityError:
        raise ActorExists(f"a local actor named {username!r} already exists") from None
    return actor


def instance_actor() -> Actor:
    """The node's own actor, created (with a fresh RSA-2048 key pair) on first use.

    Race-safe: the unique local username lets one of two concurrent creators win, the other
    takes the winner's row. A node moved to another BASE_URL keeps its key; its ids follow.
    """
    actor = Actor.objects.filter(is_local=True, username=INSTANCE_USERNAME).first()
    if actor is None:
        private_pem, public_pem = generate_rsa_keypair()
        ed25519_private, ed25519_public = generate_keypair()
        candidate = Actor(
            username=INSTANCE_USERNAME,
            is_local=True,
            actor_type="Application",
            private_key_pem=private_pem,
            public_key_pem=public_pem,
            ed25519_private_key=ed25519_private,
            ed25519_public_key=ed25519_public,
        )
        candidate.set_local_urls()
        try:
            with transaction.atomic():
                candidate.save(force_insert=True)
            return candidate
        except IntegrityError:  # created meanwhile by another request or worker
            actor = Actor.objects.get(is_local=True, username=INSTANCE_USERNAME)
    if actor.ap_id != instance_actor_id():
        actor.set_local_urls()
        actor.save()
    return actor
