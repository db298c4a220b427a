"""Our signers round-trip through our verifier, and tampered variants are refused."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest

from fedsx.crypto import generate_rsa_keypair
from fedsx.httpsig import (
    HttpRequest,
    SignatureError,
    load_public_key,
    parse_signature,
    sign_cavage,
    sign_rfc9421,
    verify_request,
)

from .vectors import CAVAGE, RFC9421, WINDOW, rfc9421_private_pem, text

NOW = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
URL = "https://fedsx.example/actors/demo/inbox"
BODY = b'{"id":"https://remote.example/f/1","type":"Follow","actor":"https://remote.example/u/bob"}'
CONTENT_TYPE = {"Content-Type": "application/activity+json"}
KEY_ID = "https://remote.example/u/bob#main-key"

RSA_PRIVATE, RSA_PUBLIC = generate_rsa_keypair()
# (signer, keyword arguments, private PEM, public PEM): every way we sign.
SIGNERS = {
    "cavage-rsa": (sign_cavage, {}, RSA_PRIVATE, RSA_PUBLIC),
    "cavage-ed25519": (
        sign_cavage,
        {},
        rfc9421_private_pem("test-key-ed25519"),
        text(RFC9421 / "test-key-ed25519.pub.pem"),
    ),
    "rfc9421-rsa-v1_5": (sign_rfc9421, {"alg": "rsa-v1_5-sha256"}, RSA_PRIVATE, RSA_PUBLIC),
    "rfc9421-rsa-pss": (
        sign_rfc9421,
        {"alg": "rsa-pss-sha512"},
        rfc9421_private_pem("test-key-rsa-pss"),
        text(RFC9421 / "test-key-rsa-pss.pub.pem"),
    ),
    "rfc9421-ed25519": (
        sign_rfc9421,
        {"alg": "ed25519"},
        rfc9421_private_pem("test-key-ed25519"),
        text(RFC9421 / "test-key-ed25519.pub.pem"),
    ),
    "rfc9421-ecdsa": (
        sign_rfc9421,
        {"alg": "ecdsa-p256-sha256"},
        rfc9421_private_pem("test-key-ecc-p256"),
        text(RFC9421 / "test-key-ecc-p256.pub.pem"),
    ),
}


def signed(name: str, *, method="POST", url=URL, body: bytes | None = BODY) -> dict[str, str]:
    sign, options, private, _ = SIGNERS[name]
    added = sign(method, url, CONTENT_TYPE, body, KEY_ID, private, now=NOW, **options)
    return {**CONTENT_TYPE, **added}


def request_of(headers: dict[str, str], *, method="POST", path="/actors/demo/inbox", body=BODY):
    return HttpRequest.build(method, path, headers, body)


def check(request: HttpRequest, name: str, *, key=None, now=NOW) -> None:
    key = key or load_public_key(SIGNERS[name][3])
    verify_request(request, parse_signature(request), key, now=now, **WINDOW)


def refusal(request: HttpRequest, name: str, **kwargs) -> str:
    with pytest.raises(SignatureError) as info:
        check(request, name, **kwargs)
    assert not info.value.unexpected
    return info.value.code


@pytest.mark.parametrize("name", SIGNERS)
def test_round_trip(name):
    headers = signed(name)
    request = request_of(headers)
    parsed = parse_signature(request)
    assert parsed.key_id == KEY_ID
    assert parsed.scheme == ("cavage" if name.startswith("cavage") else "rfc9421")
    check(request, name)


@pytest.mark.parametrize("name", SIGNERS)
def test_get_round_trip_with_query(name):
    headers = signed(name, method="GET", url=URL + "?page=2&x=%20y", body=None)
    check(
        request_of(headers, method="GET", path="/actors/demo/inbox?page=2&x=%20y", body=b""), name
    )


def test_cavage_shape_is_mastodons():
    headers = signed("cavage-rsa")
    assert headers["Host"] == "fedsx.example"
    assert headers["Date"] == "Sat, 01 Mar 2025 12:00:00 GMT"
    assert headers["Digest"].startswith("SHA-256=")
    assert 'algorithm="rsa-sha256"' in headers["Signature"]
    assert 'headers="(request-target) host date digest content-type"' in headers["Signature"]
    assert 'algorithm="hs2019"' in signed("cavage-ed25519")["Signature"]


def test_rfc9421_shape():
    headers = signed("rfc9421-rsa-v1_5")
    assert headers["Content-Digest"].startswith("sha-256=:")
    assert headers["Signature-Input"] == (
        'sig1=("@method" "@target-uri" "content-digest");created=1740830400;'
        f'keyid="{KEY_ID}";alg="rsa-v1_5-sha256"'
    )
    assert headers["Signature"].startswith("sig1=:")


def test_given_host_and_date_are_kept_and_signed():
    given = {"Host": "other.example", "Date": "Sat, 01 Mar 2025 11:59:00 GMT"}
    added = sign_cavage("POST", URL, given, BODY, KEY_ID, RSA_PRIVATE, now=NOW)
    assert "Host" not in added and "Date" not in added
    check(request_of({**given, **added}), "cavage-rsa")


# --- tampered variants ------------------------------------------------------------------------


@pytest.mark.parametrize("name", SIGNERS)
def test_body_swapped_under_its_digest(name):
    assert refusal(request_of(signed(name), body=BODY.replace(b"bob", b"eve")), name) == (
        "digest_mismatch"
    )


@pytest.mark.parametrize("name", SIGNERS)
def test_body_swapped_with_a_fresh_digest(name):
    other = BODY.replace(b"bob", b"eve")
    headers = signed(name)
    fresh = signed(name, body=other)  # digest headers of the other body, signature of ours
    for field in ("Digest", "Content-Digest"):
        if field in headers:
            headers[field] = fresh[field]
    assert refusal(request_of(headers, body=other), name) == "bad_signature"


@pytest.mark.parametrize("name", SIGNERS)
def test_target_changed(name):
    assert refusal(request_of(signed(name), path="/actors/other/inbox"), name) == "bad_signature"


@pytest.mark.parametrize("name", SIGNERS)
def test_host_changed(name):
    headers = {**signed(name), "Host": "evil.example"}
    assert refusal(request_of(headers), name) == "bad_signature"


@pytest.mark.parametrize("name", SIGNERS)
def test_method_changed(name):
    assert refusal(request_of(signed(name), method="PUT"), name) == "bad_signature"


def test_signed_date_changed():
    headers = {**signed("cavage-rsa"), "Date": "Sat, 01 Mar 2025 12:00:01 GMT"}
    assert refusal(request_of(headers), "cavage-rsa") == "bad_signature"


@pytest.mark.parametrize("name", SIGNERS)
def test_signature_bit_flipped(name):
    headers = signed(name)
    value = headers["Signature"]
    if name.startswith("cavage"):
        encoded = value.split('signature="')[1].rstrip('"')
    else:
        encoded = value.split(":")[1]
    raw = bytearray(base64.b64decode(encoded))
    raw[len(raw) // 2] ^= 0x01
    headers["Signature"] = value.replace(encoded, base64.b64encode(bytes(raw)).decode())
    assert refusal(request_of(headers), name) == "bad_signature"


@pytest.mark.parametrize("name", SIGNERS)
def test_another_key_of_the_same_type(name):
    kind = name.rsplit("-", 1)[-1]
    other = {
        "rsa": generate_rsa_keypair()[1],
        "v1_5": generate_rsa_keypair()[1],
        "pss": text(RFC9421 / "test-key-rsa.pub.pem"),
        "ed25519": _other_ed25519(),
        "ecdsa": _other_p256(),
    }[kind]
    assert refusal(request_of(signed(name)), name, key=load_public_key(other)) == "bad_signature"


@pytest.mark.parametrize("name", SIGNERS)
def test_a_key_of_another_type(name):
    wrong = "test-public.pem" if "rsa" not in name else None
    key = load_public_key(
        text(CAVAGE / wrong) if wrong else text(RFC9421 / "test-key-ed25519.pub.pem")
    )
    assert refusal(request_of(signed(name)), name, key=key) == "bad_signature"


@pytest.mark.parametrize("name", SIGNERS)
def test_replayed_later_is_out_of_window(name):
    request = request_of(signed(name))
    assert refusal(request, name, now=NOW + timedelta(hours=1, seconds=1)) == "date_out_of_window"
    assert refusal(request, name, now=NOW - timedelta(minutes=5, seconds=1)) == (
        "date_out_of_window"
    )
    check(request, name, now=NOW + timedelta(minutes=59))


def test_missing_signature():
    request = request_of(CONTENT_TYPE)
    with pytest.raises(SignatureError) as info:
        parse_signature(request)
    assert info.value.code == "missing_signature"


def test_signature_over_query_dropped_only_for_cavage():
    # The Mastodon quirk is a draft-cavage one: RFC 9421 @target-uri keeps the query exact.
    headers = signed("rfc9421-rsa-v1_5", method="GET", url=URL, body=None)
    request = request_of(headers, method="GET", path="/actors/demo/inbox?x=1", body=b"")
    assert refusal(request, "rfc9421-rsa-v1_5") == "bad_signature"
    headers = signed("cavage-rsa", method="GET", url=URL, body=None)
    check(request_of(headers, method="GET", path="/actors/demo/inbox?x=1", body=b""), "cavage-rsa")


def test_scheme_is_part_of_the_target_uri():
    request = request_of(signed("rfc9421-rsa-v1_5"))
    key = load_public_key(RSA_PUBLIC)
    with pytest.raises(SignatureError, match="bad_signature"):
        verify_request(request, parse_signature(request), key, now=NOW, scheme="http", **WINDOW)
    http_signed = signed("rfc9421-rsa-v1_5", url=URL.replace("https:", "http:"))
    request = request_of(http_signed)
    verify_request(request, parse_signature(request), key, now=NOW, scheme="http", **WINDOW)


def _other_ed25519() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    return (
        ed25519.Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def _other_p256() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    return (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
