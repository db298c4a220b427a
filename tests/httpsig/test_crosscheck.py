"""RFC 9421: the independent ``http-message-signatures`` package agrees with us, both ways."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import requests
from http_message_signatures import (
    HTTPMessageSigner,
    HTTPMessageVerifier,
    HTTPSignatureKeyResolver,
    algorithms,
)

from fedsx.httpsig import (
    HttpRequest,
    load_public_key,
    parse_signature,
    sign_rfc9421,
    verify_request,
)

from .test_signing import RSA_PRIVATE, RSA_PUBLIC
from .vectors import RFC9421, WINDOW, rfc9421_private_pem, text

URL = "https://fedsx.example/actors/demo/inbox?page=1"
PATH = "/actors/demo/inbox?page=1"
BODY = b'{"type":"Like","actor":"https://peer.example/u/amy","object":"https://fedsx.example/n/1"}'
KEY_ID = "https://peer.example/u/amy#main-key"

KEYS = {  # their algorithm class, our alg name, private PEM, public PEM
    "rsa-v1_5-sha256": (algorithms.RSA_V1_5_SHA256, RSA_PRIVATE, RSA_PUBLIC),
    "rsa-pss-sha512": (
        algorithms.RSA_PSS_SHA512,
        rfc9421_private_pem("test-key-rsa-pss"),
        text(RFC9421 / "test-key-rsa-pss.pub.pem"),
    ),
    "ed25519": (
        algorithms.ED25519,
        rfc9421_private_pem("test-key-ed25519"),
        text(RFC9421 / "test-key-ed25519.pub.pem"),
    ),
    "ecdsa-p256-sha256": (
        algorithms.ECDSA_P256_SHA256,
        rfc9421_private_pem("test-key-ecc-p256"),
        text(RFC9421 / "test-key-ecc-p256.pub.pem"),
    ),
}


class Resolver(HTTPSignatureKeyResolver):
    def __init__(self, private_pem: str, public_pem: str):
        self.private, self.public = private_pem.encode(), public_pem.encode()

    def resolve_private_key(self, key_id):
        return self.private

    def resolve_public_key(self, key_id):
        return self.public


def their_request(headers: dict[str, str]) -> requests.PreparedRequest:
    return requests.Request("POST", URL, headers=headers, data=BODY).prepare()


@pytest.mark.parametrize("alg", KEYS)
def test_they_verify_what_we_sign(alg):
    their_alg, private, public = KEYS[alg]
    headers = {"Content-Type": "application/activity+json"}
    headers.update(sign_rfc9421("POST", URL, headers, BODY, KEY_ID, private, alg=alg))
    verifier = HTTPMessageVerifier(
        signature_algorithm=their_alg, key_resolver=Resolver(private, public)
    )
    (result,) = verifier.verify(their_request(headers))
    assert result.parameters["keyid"] == KEY_ID
    assert list(result.covered_components) == [
        '"@method"',
        '"@target-uri"',
        '"content-digest"',
        '"@signature-params"',
    ]
    # Their verifier also checks the digest against the body.
    verifier.verify_body(their_request(headers), [result], BODY)


@pytest.mark.parametrize("alg", KEYS)
@pytest.mark.parametrize(
    "covered",
    [
        ("@method", "@target-uri"),
        ("@method", "@authority", "@path", "@query", "content-type"),
        ("@method", "@authority", "@request-target", "@scheme", '"@query-param";name="page"'),
    ],
)
def test_we_verify_what_they_sign(alg, covered):
    their_alg, private, public = KEYS[alg]
    request = their_request({"Content-Type": "application/activity+json"})
    signer = HTTPMessageSigner(
        signature_algorithm=their_alg, key_resolver=Resolver(private, public)
    )
    signer.sign(
        request,
        key_id=KEY_ID,
        covered_component_ids=covered,
        body=BODY,  # adds Content-Digest and covers it
        created=datetime.now(UTC),
    )
    ours = HttpRequest.build(
        "POST", PATH, [*request.headers.items(), ("Host", "fedsx.example")], BODY
    )
    parsed = parse_signature(ours)
    assert parsed.label == "pyhms" and parsed.algorithm == alg
    verify_request(ours, parsed, load_public_key(public), now=datetime.now(UTC), **WINDOW)
