"""draft-cavage: the independent ``httpsig`` package agrees with us, both ways.

``httpsig`` is built on pycryptodome, not ``cryptography``; the fixtures' vectors (tested in
test_cavage_vectors.py) are the other independent source.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from fedsx.httpsig import (
    HttpRequest,
    digest_header,
    load_public_key,
    parse_signature,
    sign_cavage,
    verify_request,
)

from .test_signing import RSA_PRIVATE, RSA_PUBLIC
from .vectors import WINDOW

httpsig = pytest.importorskip("httpsig")

BODY = b'{"type":"Like","actor":"https://peer.example/u/amy","object":"https://fedsx.example/n/1"}'
KEY_ID = "https://peer.example/u/amy#main-key"

CAVAGE_PATH = "/actors/demo/inbox"
CAVAGE_COVERED = ["(request-target)", "host", "date", "digest"]


def test_we_verify_what_httpsig_signs():
    now = datetime.now(UTC)
    headers = {
        "Host": "fedsx.example",
        "Date": now.strftime("%a, %d %b %Y %H:%M:%S GMT"),
        "Digest": digest_header(BODY),
    }
    signer = httpsig.HeaderSigner(
        KEY_ID, RSA_PRIVATE, algorithm="rsa-sha256", headers=CAVAGE_COVERED, sign_header="signature"
    )
    headers = dict(signer.sign(headers, method="POST", path=CAVAGE_PATH))
    request = HttpRequest.build("POST", CAVAGE_PATH, headers, BODY)
    parsed = parse_signature(request)
    assert (parsed.key_id, parsed.algorithm) == (KEY_ID, "rsa-sha256")
    verify_request(request, parsed, load_public_key(RSA_PUBLIC), now=now, **WINDOW)


def test_we_verify_httpsig_authorization_header():
    now = datetime.now(UTC)
    headers = {"Host": "fedsx.example", "Date": now.strftime("%a, %d %b %Y %H:%M:%S GMT")}
    signer = httpsig.HeaderSigner(
        KEY_ID, RSA_PRIVATE, algorithm="rsa-sha256", headers=["(request-target)", "host", "date"]
    )
    headers = dict(signer.sign(headers, method="GET", path=CAVAGE_PATH))
    assert headers["authorization"].startswith("Signature ")
    request = HttpRequest.build("GET", CAVAGE_PATH, headers, b"")
    verify_request(
        request, parse_signature(request), load_public_key(RSA_PUBLIC), now=now, **WINDOW
    )


def test_httpsig_verifies_what_we_sign():
    headers = sign_cavage(
        "POST", "https://fedsx.example" + CAVAGE_PATH, {}, BODY, KEY_ID, RSA_PRIVATE
    )
    verifier = httpsig.HeaderVerifier(
        headers=headers,
        secret=RSA_PUBLIC,
        required_headers=CAVAGE_COVERED,
        method="POST",
        path=CAVAGE_PATH,
        sign_header="signature",
    )
    assert verifier.verify() is True
    tampered = {**headers, "Host": "evil.example"}
    verifier = httpsig.HeaderVerifier(
        headers=tampered,
        secret=RSA_PUBLIC,
        required_headers=CAVAGE_COVERED,
        method="POST",
        path=CAVAGE_PATH,
        sign_header="signature",
    )
    assert verifier.verify() is False
