"""Requests signed by implementations other than ours, through the real view."""

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from http_message_signatures import HTTPMessageSigner, HTTPSignatureKeyResolver, algorithms

from fedsx.models import InboxEntry

from .helpers import ACTIVITIES, keypair, meta, remote_sender, stored_counts

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


class Resolver(HTTPSignatureKeyResolver):
    def __init__(self, private_pem: str):
        self.key = load_pem_private_key(private_pem.encode(), password=None)

    def resolve_private_key(self, key_id):
        return self.key

    def resolve_public_key(self, key_id):
        return self.key.public_key()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "covered",
    [
        ("@method", "@target-uri", "content-digest"),
        ("@method", "@authority", "@path", "content-digest", "content-type"),
    ],
)
def test_http_message_signatures_package_rfc9421(client, demo, covered):
    sender = remote_sender("https://remote.example/users/bob")
    activity = {
        "id": "https://remote.example/f/1",
        "type": "Follow",
        "actor": sender.ap_id,
        "object": demo.ap_id,
    }
    body = json.dumps(activity).encode()
    request = requests.Request(
        "POST",
        "http://testserver/actors/demo/inbox",
        data=body,
        headers={"Content-Type": "application/activity+json"},
    ).prepare()
    signer = HTTPMessageSigner(
        signature_algorithm=algorithms.RSA_V1_5_SHA256, key_resolver=Resolver(keypair()[0])
    )
    signer.sign(
        request,
        key_id=sender.key_id,
        covered_component_ids=covered,
        body=body,
        created=datetime.now(UTC),
    )
    headers = {k: v for k, v in request.headers.items() if k.lower() != "content-length"}
    response = client.generic(
        "POST",
        "/actors/demo/inbox",
        body,
        content_type="application/activity+json",
        **meta(headers),
    )
    assert response.status_code == 202, response.content
    assert InboxEntry.objects.count() == 1


@pytest.mark.django_db
def test_real_mastodon_delivery_with_an_altered_body_is_refused(client, demo):
    """signed-requests/: a real Mastodon 2.5.0 delivery whose body PeerTube's developers
    altered: its Digest cannot match, so it is refused before anything else."""
    capture = json.loads(
        (
            ACTIVITIES / "signed-requests/mastodon-2.5.0-create-peertube-fixture-bad-body.json"
        ).read_text()
    )
    body = json.dumps(capture["body"]).encode()
    headers = {k: v for k, v in capture["headers"].items() if k != "content-length"}
    response = client.generic(
        "POST",
        "/actors/demo/inbox",
        body,
        content_type="application/activity+json",
        **meta(headers),
    )
    assert response.status_code == 400
    assert json.loads(response.content)["error"] == "digest_mismatch"
    assert stored_counts() == (0, 0)
