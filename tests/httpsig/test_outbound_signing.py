"""``sign_request``: both schemes, a POST and a GET, verified by us and by verifiers we did
not write (``http-message-signatures`` for RFC 9421; ``httpsig`` and ``bovine`` for
draft-cavage), which refuse the same requests tampered with. And the private-key cache."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import httpsig
import pytest
import requests
from bovine.crypto import build_validate_http_signature_raw
from bovine.crypto.types import CryptographicIdentifier
from http_message_signatures import HTTPMessageVerifier, InvalidSignature, algorithms

from fedsx.httpsig import (
    CAVAGE,
    RFC9421,
    HttpRequest,
    SignatureError,
    load_private_key,
    load_public_key,
    other_scheme,
    parse_signature,
    sign_cavage,
    sign_request,
    verify_request,
)
from fedsx.httpsig import keys as keys_module

from .test_crosscheck import Resolver
from .test_signing import RSA_PRIVATE, RSA_PUBLIC
from .vectors import RFC9421 as RFC9421_VECTORS
from .vectors import WINDOW, rfc9421_private_pem, text

OWNER = "https://fedsx.example/actors/demo"
KEY_ID = OWNER + "#main-key"
INBOX = "https://peer.example/users/amy/inbox"
# bovine signs (request-target) without the query, so the cross-checked GET has none.
ACTOR = "https://peer.example/users/amy"
BODY = b'{"type":"Create","actor":"https://fedsx.example/actors/demo","object":"n/1"}'
REQUESTS = {  # method, url, given headers, body
    "POST": ("POST", INBOX, {"Content-Type": "application/activity+json"}, BODY),
    "GET": ("GET", ACTOR, {"Accept": "application/activity+json"}, None),
}


def signed(scheme: str, method: str, **kwargs) -> tuple[str, str, dict[str, str], bytes | None]:
    method, url, given, body = REQUESTS[method]
    added = sign_request(
        method,
        url,
        given,
        body,
        key_id=KEY_ID,
        private_key_pem=RSA_PRIVATE,
        scheme=scheme,
        **kwargs,
    )
    return method, url, {**given, **added}, body


def target(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


# --- the verifiers: each says whether the request is authentic --------------------------------


def ours(method: str, url: str, headers: dict[str, str], body: bytes | None) -> bool:
    request = HttpRequest.build(method, target(url), headers, body)
    try:
        verify_request(
            request,
            parse_signature(request),
            load_public_key(RSA_PUBLIC),
            now=datetime.now(UTC),
            **WINDOW,
        )
    except SignatureError:
        return False
    return True


def http_message_signatures(method, url, headers, body) -> bool:
    message = requests.Request(method, url, headers=headers, data=body).prepare()
    verifier = HTTPMessageVerifier(
        signature_algorithm=algorithms.RSA_V1_5_SHA256,
        key_resolver=Resolver(RSA_PRIVATE, RSA_PUBLIC),
    )
    try:
        results = verifier.verify(message)
        # It checks Content-Digest against the body (and refuses a body with no digest).
        verifier.verify_body(message, results, body or b"")
    except InvalidSignature:
        return False
    return bool(results)


def httpsig_headers(method, url, headers, body) -> bool:
    # httpsig checks the signature over the header fields only; the body's digest is compared
    # here with hashlib, as any receiver does before it trusts a signed Digest.
    if body is not None:
        expected = "SHA-256=" + base64.b64encode(hashlib.sha256(body).digest()).decode()
        if headers.get("Digest") != expected:
            return False
    required = ["(request-target)", "host", "date"] + (["digest"] if body is not None else [])
    verifier = httpsig.HeaderVerifier(
        headers=headers,
        secret=RSA_PUBLIC,
        required_headers=required,
        method=method,
        path=target(url),
        sign_header="signature",
    )
    return verifier.verify()


def bovine(method, url, headers, body) -> bool:
    async def key_retriever(key_id):
        assert key_id == KEY_ID
        return CryptographicIdentifier.from_pem(RSA_PUBLIC, OWNER)

    async def read_body():
        return body or b""

    validate = build_validate_http_signature_raw(key_retriever)
    # bovine reads header fields from a dict by lowercase name (as Quart's headers give them);
    # it checks Digest against the body itself, and Date against its own clock (5 minutes).
    lowercase = {name.lower(): value for name, value in headers.items()}
    return asyncio.run(validate(method, url, lowercase, read_body)) == OWNER


VERIFIERS = {
    CAVAGE: {"ours": ours, "httpsig": httpsig_headers, "bovine": bovine},
    RFC9421: {"ours": ours, "http-message-signatures": http_message_signatures},
}
CASES = [
    (scheme, name, method)
    for scheme, verifiers in VERIFIERS.items()
    for name in verifiers
    for method in REQUESTS
]
INDEPENDENT = [case for case in CASES if case[1] != "ours"]


def verifier(name: str, scheme: str):
    return VERIFIERS[scheme][name]


# --- what we sign verifies --------------------------------------------------------------------


@pytest.mark.parametrize(("scheme", "name", "method"), CASES)
def test_signed_request_verifies(scheme, name, method):
    assert verifier(name, scheme)(*signed(scheme, method))


def test_cavage_shape():
    _, _, post, _ = signed(CAVAGE, "POST")
    assert post["Digest"].startswith("SHA-256=")
    assert 'algorithm="rsa-sha256"' in post["Signature"]
    assert 'headers="(request-target) host date digest content-type"' in post["Signature"]
    assert post["Host"] == "peer.example" and post["Date"].endswith(" GMT")
    _, _, get, _ = signed(CAVAGE, "GET")
    assert "Digest" not in get
    assert 'headers="(request-target) host date"' in get["Signature"]


def test_rfc9421_shape():
    now = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
    _, _, post, _ = signed(RFC9421, "POST", now=now)
    assert post["Content-Digest"].startswith("sha-256=:")
    assert post["Signature-Input"] == (
        'sig1=("@method" "@target-uri" "content-digest");created=1740830400;'
        f'keyid="{KEY_ID}";alg="rsa-v1_5-sha256"'
    )
    _, _, get, _ = signed(RFC9421, "GET", now=now)
    assert "Content-Digest" not in get and "Digest" not in get
    assert get["Signature-Input"].startswith('sig1=("@method" "@target-uri");created=')


@pytest.mark.parametrize("scheme", [CAVAGE, RFC9421])
def test_get_with_an_empty_body_has_no_digest(scheme):
    added = sign_request(
        "GET", ACTOR, {}, b"", key_id=KEY_ID, private_key_pem=RSA_PRIVATE, scheme=scheme
    )
    assert not {"Digest", "Content-Digest"} & set(added)
    assert ours("GET", ACTOR, added, b"")


def test_rfc9421_signs_with_the_keys_own_algorithm():
    private = rfc9421_private_pem("test-key-ed25519")
    public = load_public_key(text(RFC9421_VECTORS / "test-key-ed25519.pub.pem"))
    headers = sign_request(
        "POST", INBOX, {}, BODY, key_id=KEY_ID, private_key_pem=private, scheme=RFC9421
    )
    assert headers["Signature-Input"].endswith('alg="ed25519"')
    request = HttpRequest.build("POST", target(INBOX), headers, BODY)
    verify_request(request, parse_signature(request), public, now=datetime.now(UTC), **WINDOW)


def test_schemes():
    assert other_scheme(CAVAGE) == RFC9421 and other_scheme(RFC9421) == CAVAGE
    with pytest.raises(ValueError):
        other_scheme("hs2019")
    with pytest.raises(ValueError):
        sign_request(
            "POST", INBOX, {}, BODY, key_id=KEY_ID, private_key_pem=RSA_PRIVATE, scheme="x"
        )


# --- tampered requests are refused --------------------------------------------------------------


def shifted(scheme: str, headers: dict[str, str]) -> dict[str, str]:
    """The signing time moved by a minute (still fresh, so only the signature can object)."""
    if scheme == CAVAGE:
        date = datetime.strptime(headers["Date"], "%a, %d %b %Y %H:%M:%S GMT")
        later = (date + timedelta(seconds=60)).strftime("%a, %d %b %Y %H:%M:%S GMT")
        return {**headers, "Date": later}
    created = headers["Signature-Input"].split(";created=")[1].split(";")[0]
    moved = headers["Signature-Input"].replace(f"created={created}", f"created={int(created) - 60}")
    return {**headers, "Signature-Input": moved}


def fresh_digest(scheme: str, headers: dict[str, str], body: bytes) -> dict[str, str]:
    """The digest recomputed over a swapped body, as an attacker would."""
    raw = hashlib.sha256(body).digest()
    if scheme == CAVAGE:
        return {**headers, "Digest": "SHA-256=" + base64.b64encode(raw).decode()}
    return {**headers, "Content-Digest": f"sha-256=:{base64.b64encode(raw).decode()}:"}


@pytest.mark.parametrize(("scheme", "name", "method"), CASES)
def test_tampered_date_is_refused(scheme, name, method):
    method, url, headers, body = signed(scheme, method)
    assert not verifier(name, scheme)(method, url, shifted(scheme, headers), body)


@pytest.mark.parametrize(("scheme", "name", "method"), CASES)
def test_tampered_target_is_refused(scheme, name, method):
    method, url, headers, body = signed(scheme, method)
    other = url.replace("/amy", "/bob")
    assert other != url
    assert not verifier(name, scheme)(method, other, headers, body)


@pytest.mark.parametrize(
    ("scheme", "name"), [(scheme, name) for scheme, name, method in CASES if method == "POST"]
)
def test_tampered_body_is_refused(scheme, name):
    method, url, headers, body = signed(scheme, "POST")
    swapped = body.replace(b"n/1", b"n/2")
    check = verifier(name, scheme)
    assert not check(method, url, headers, swapped)  # under the signed digest
    assert not check(method, url, fresh_digest(scheme, headers, swapped), swapped)


@pytest.mark.parametrize(("scheme", "name", "method"), INDEPENDENT)
def test_independent_verifiers_see_the_untampered_request_too(scheme, name, method):
    # The tamper tests above mean something only if the same verifier, same inputs, says yes.
    method, url, headers, body = signed(scheme, method)
    assert verifier(name, scheme)(method, url, dict(headers), body)


# --- the private-key cache ----------------------------------------------------------------------


def test_private_keys_are_parsed_once():
    assert load_private_key(RSA_PRIVATE) is load_private_key(RSA_PRIVATE)
    assert load_private_key(RSA_PRIVATE + "\n") is load_private_key(RSA_PRIVATE)


def test_the_cache_is_bounded_and_holds_no_pem_text(monkeypatch):
    monkeypatch.setattr(keys_module, "PRIVATE_KEY_CACHE_SIZE", 2)
    monkeypatch.setattr(keys_module, "_private_keys", type(keys_module._private_keys)())
    pems = [
        RSA_PRIVATE,
        rfc9421_private_pem("test-key-ed25519"),
        rfc9421_private_pem("test-key-ecc-p256"),
    ]
    for pem in pems:
        load_private_key(pem)
    cached = keys_module._private_keys
    assert len(cached) == 2
    assert all(isinstance(key, bytes) and len(key) == 32 for key in cached)  # SHA-256 digests
    assert hashlib.sha256(RSA_PRIVATE.strip().encode()).digest() not in cached  # oldest out


def test_a_loaded_key_signs_as_its_pem_does():
    now = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
    key = load_private_key(RSA_PRIVATE)
    by_pem = sign_cavage("POST", INBOX, {}, BODY, KEY_ID, RSA_PRIVATE, now=now)
    assert sign_cavage("POST", INBOX, {}, BODY, KEY_ID, key, now=now) == by_pem
    with pytest.raises(SignatureError):
        sign_cavage("POST", INBOX, {}, BODY, KEY_ID, load_public_key(RSA_PUBLIC), now=now)


def test_an_unreadable_key_says_so_without_its_text():
    with pytest.raises(SignatureError) as info:
        load_private_key("-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n-----END PRIVATE KEY-----")
    assert "c2VjcmV0" not in str(info.value) and info.value.code == "bad_key"
