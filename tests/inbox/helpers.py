"""Signing and delivering activities through the real inbox view in tests."""

from __future__ import annotations

import json
from base64 import b64encode
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from django.utils import timezone

from fedsx import httpsig, ldsig
from fedsx.crypto import generate_rsa_keypair
from fedsx.models import Activity, Actor, InboxEntry, host_of

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
ACTIVITIES = FIXTURES / "activities"


def keypair(label: str = "default") -> tuple[str, str]:
    """An RSA key pair per label, generated once per test run."""
    return _keypair(label)


@cache
def _keypair(label: str) -> tuple[str, str]:
    return generate_rsa_keypair()


@dataclass
class Sender:
    """A remote actor whose key is already cached in our database."""

    ap_id: str
    key_id: str
    private_pem: str
    public_pem: str


def remote_sender(ap_id: str, *, label: str = "default", key_id: str | None = None) -> Sender:
    private_pem, public_pem = keypair(label)
    key_id = key_id or f"{ap_id}#main-key"
    Actor.objects.update_or_create(
        ap_id=ap_id,
        defaults={
            "domain": host_of(ap_id),
            "key_id": key_id,
            "public_key_pem": public_pem,
            "followers_url": f"{ap_id}/followers",
            "key_fetched_at": timezone.now(),  # just fetched: no refetch on a bad signature
        },
    )
    return Sender(ap_id, key_id, private_pem, public_pem)


def meta(headers: dict[str, str]) -> dict[str, str]:
    """Django test-client keyword arguments for request headers."""
    out = {}
    for name, value in headers.items():
        key = name.upper().replace("-", "_")
        if key == "CONTENT_TYPE":
            continue  # passed as content_type
        out[key if key == "CONTENT_LENGTH" else f"HTTP_{key}"] = value
    return out


def deliver(
    client,
    path: str,
    activity: dict | bytes,
    sender: Sender,
    *,
    content_type: str = "application/activity+json",
    extra: dict[str, str] | None = None,
    body: bytes | None = None,
    now=None,
    rfc9421: bool = False,
):
    """Sign (Mastodon-style, or RFC 9421) and POST; ``body`` swaps the body after signing."""
    signed_body = activity if isinstance(activity, bytes) else json.dumps(activity).encode()
    url = f"http://testserver{path}"
    headers = {"Content-Type": content_type}
    sign = httpsig.sign_rfc9421 if rfc9421 else httpsig.sign_cavage
    headers |= sign("POST", url, headers, signed_body, sender.key_id, sender.private_pem, now=now)
    headers |= extra or {}
    return client.generic(
        "POST",
        path,
        body if body is not None else signed_body,
        content_type=content_type,
        **meta(headers),
    )


def stored_counts() -> tuple[int, int]:
    return Activity.objects.count(), InboxEntry.objects.count()


def load_activity(relative: str) -> dict:
    return json.loads((ACTIVITIES / relative).read_text())


def ld_sign(activity: dict, key_id: str, private_pem: str) -> dict:
    """``activity`` with an RsaSignature2017 by ``key_id``, made as Mastodon makes it."""
    options = {"type": "RsaSignature2017", "creator": key_id, "created": "2024-01-01T00:00:00Z"}
    data = ldsig.to_be_verified({**activity, "signature": options})
    private_key = serialization.load_pem_private_key(private_pem.encode(), None)
    value = private_key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    return {**activity, "signature": {**options, "signatureValue": b64encode(value).decode()}}
