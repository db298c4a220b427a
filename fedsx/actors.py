"""Creating local actors."""

from __future__ import annotations

from django.db import IntegrityError, transaction

from .crypto import generate_rsa_keypair
from .models import Actor, validate_username


class ActorExists(Exception):
    pass


def create_local_actor(username: str, *, name: str = "", exists_ok: bool = False) -> Actor:
    """A new local actor with a fresh RSA-2048 key pair.

    With ``exists_ok`` an existing actor is returned instead, its ids re-derived from the
    current BASE_URL (so a node moved to another origin or port keeps working).
    """
    validate_username(username)
    existing = Actor.objects.filter(is_local=True, username=username).first()
    if existing is not None:
        if not exists_ok:
            raise ActorExists(f"a local actor named {username!r} already exists")
        existing.set_local_urls()
        existing.save()
        return existing
    private_pem, public_pem = generate_rsa_keypair()
    actor = Actor(
        username=username,
        name=name,
        is_local=True,
        private_key_pem=private_pem,
        public_key_pem=public_pem,
    )
    actor.set_local_urls()
    try:
        with transaction.atomic():
            actor.save()
    except IntegrityError:
        raise ActorExists(f"a local actor named {username!r} already exists") from None
    return actor
