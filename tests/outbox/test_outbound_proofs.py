"""Every posted activity carries its author's eddsa-jcs-2022 proof (FEP-8b32), made with the
Ed25519 key the served actor document publishes as a FEP-521a Multikey.

Checked where a peer would check it: the body a receiver got over HTTP, the activity served at
its id, the stored payload; with our verifier and with an independent one (apsig, which
follows the current vc-di-eddsa algorithm).
"""

from __future__ import annotations

import copy
import json
from urllib.parse import urlsplit

import pytest
from apsig.proof.verify import ProofVerifier
from bovine.crypto.types import CryptographicIdentifier
from django.core.management import call_command

from fedsx import delivery, outbox, proofs
from fedsx.actors import create_local_actor
from fedsx.models import Actor

from .conftest import follows, remote_actor

AP = "application/activity+json"
pytestmark = pytest.mark.django_db


def served(client, url: str) -> dict:
    response = client.get(urlsplit(url).path, HTTP_ACCEPT=AP)
    assert response.status_code == 200, response.content
    return json.loads(response.content)


def key_from_actor_document(client, verification_method: str) -> str:
    """The publicKeyMultibase the author's served document lists under assertionMethod for
    this verification method (FEP-521a), as a peer looks it up."""
    actor_url = verification_method.split("#", 1)[0]
    document = served(client, actor_url)
    (key,) = [k for k in document["assertionMethod"] if k["id"] == verification_method]
    assert key["type"] == "Multikey" and key["controller"] == document["id"]
    return key["publicKeyMultibase"]


def independently_verified(document: dict, multibase: str) -> bool:
    # apsig pops proofValue from the document it is given: hand it a copy.
    return (
        ProofVerifier(multibase).verify(copy.deepcopy(document))
        == (document["proof"]["verificationMethod"])
    )


def test_a_delivered_activity_carries_a_proof_that_verifies(client, demo, receiver):
    amy = remote_actor(receiver.url("/users/amy"), inbox=receiver.url("/users/amy/inbox"))
    follows(amy, demo)
    public = {"to": ["https://www.w3.org/ns/activitystreams#Public"], "cc": [demo.followers_url]}
    record = outbox.post(demo, {"type": "Note", "content": "hi", **public})
    delivery.deliver([record.deliveries.get().pk])
    (got,) = receiver.received

    body = got.activity
    proof = body["proof"]
    assert proof["type"] == "DataIntegrityProof"
    assert proof["cryptosuite"] == "eddsa-jcs-2022"
    assert proof["proofPurpose"] == "assertionMethod"
    assert proof["verificationMethod"] == f"{demo.ap_id}#ed25519-key"
    assert proofs.DATA_INTEGRITY_CONTEXT in body["@context"]
    assert proof["@context"] == body["@context"]

    key = key_from_actor_document(client, proof["verificationMethod"])
    for document in (body, served(client, record.ap_id), record.payload):
        assert document["proof"] == proof  # one proof: delivered, served and stored alike
        proofs.verify(document, key)
        assert independently_verified(document, key)


def test_the_proof_is_made_after_bto_and_bcc_are_stripped(client, demo, receiver):
    amy = remote_actor(receiver.url("/users/amy"), inbox=receiver.url("/users/amy/inbox"))
    ben = remote_actor(receiver.url("/users/ben"), inbox=receiver.url("/users/ben/inbox"))
    record = outbox.post(
        demo,
        {"type": "Note", "content": "psst", "to": [amy.ap_id], "bto": [ben.ap_id]},
    )
    delivery.deliver(list(record.deliveries.values_list("pk", flat=True)))
    bodies = [r.activity for r in receiver.wait_for(2)]
    key = key_from_actor_document(client, f"{demo.ap_id}#ed25519-key")
    for body in bodies:
        assert "bto" not in body and "bto" not in body["object"]
        proofs.verify(body, key)
        assert independently_verified(body, key)


def test_a_changed_delivered_body_no_longer_verifies(client, demo):
    record = outbox.post(demo, {"type": "Note", "content": "hi", "to": [demo.followers_url]})
    key = key_from_actor_document(client, record.payload["proof"]["verificationMethod"])
    forged = copy.deepcopy(record.payload)
    forged["object"]["content"] = "bye"
    with pytest.raises(proofs.ProofError) as err:
        proofs.verify(forged, key)
    assert err.value.code == "bad_signature"
    assert not independently_verified(forged, key)


def test_an_activity_with_its_own_context_keeps_it_and_gains_data_integrity(demo):
    context = ["https://www.w3.org/ns/activitystreams", {"toot": "http://joinmastodon.org/ns#"}]
    record = outbox.post(demo, {"@context": context, "type": "Note", "content": "hi"})
    assert record.payload["@context"] == [*context, proofs.DATA_INTEGRITY_CONTEXT]
    proofs.verify(record.payload, demo.ed25519_public_key)


def test_bovine_agrees_on_a_proof_without_the_context_option(demo):
    """bovine 0.5.19 implements eddsa-jcs-2022 as it was before the proof options carried the
    document's @context (vc-di-eddsa 2025): it verifies our keys and hashing on a proof made
    that way, and (lagging the spec) not on the proofs we send."""
    secret = proofs.decode_secret_key(demo.ed25519_private_key)
    multikey = {
        "id": demo.multikey_id,
        "type": "Multikey",
        "controller": demo.ap_id,
        "publicKeyMultibase": demo.ed25519_public_key,
    }
    bovine = CryptographicIdentifier.from_multikey(multikey)
    doc = {"@context": "https://www.w3.org/ns/activitystreams", "type": "Note", "content": "hi"}
    legacy = proofs.sign(doc, secret, demo.multikey_id, embed_context=False)
    assert bovine.verify_document(legacy) == demo.ap_id
    proofs.verify(legacy, demo.ed25519_public_key)


def test_local_actors_get_an_ed25519_key_and_publish_it(client, demo):
    assert demo.ed25519_public_key.startswith("z6Mk")
    secret = proofs.decode_secret_key(demo.ed25519_private_key)
    assert proofs.encode_public_key(secret.public_key()) == demo.ed25519_public_key
    document = served(client, demo.ap_id)
    assert document["assertionMethod"] == [
        {
            "id": "http://testserver/actors/demo#ed25519-key",
            "type": "Multikey",
            "controller": "http://testserver/actors/demo",
            "publicKeyMultibase": demo.ed25519_public_key,
        }
    ]
    assert proofs.MULTIKEY_CONTEXT in document["@context"]
    assert demo.ed25519_private_key not in json.dumps(document)
    assert create_local_actor("other").ed25519_public_key != demo.ed25519_public_key


def test_the_migration_gives_existing_local_actors_a_key(db):
    from django.apps import apps
    from django.utils.module_loading import import_string

    migrate = import_string(
        "fedsx.migrations.0009_actor_ed25519_key_and_icon.give_local_actors_an_ed25519_key"
    )
    old = create_local_actor("old")
    Actor.objects.filter(pk=old.pk).update(ed25519_public_key="", ed25519_private_key="")
    remote = Actor.objects.create(ap_id="https://remote.example/u/x", domain="remote.example")
    migrate(apps, None)
    old.refresh_from_db()
    remote.refresh_from_db()
    secret = proofs.decode_secret_key(old.ed25519_private_key)
    assert proofs.encode_public_key(secret.public_key()) == old.ed25519_public_key
    assert remote.ed25519_public_key == "" and remote.ed25519_private_key == ""


def test_the_admin_never_shows_the_ed25519_secret(admin_client, demo):
    response = admin_client.get(f"/admin/fedsx/actor/{demo.pk}/change/")
    assert response.status_code == 200
    body = response.content.decode()
    assert demo.ed25519_public_key in body
    assert demo.ed25519_private_key not in body


def test_create_actor_sets_an_icon(db, capsys):
    call_command("create_actor", "pic", "--icon", "https://cdn.example/a.png")
    actor = Actor.objects.get(username="pic")
    assert (actor.icon_url, actor.icon_media_type) == ("https://cdn.example/a.png", "image/png")
