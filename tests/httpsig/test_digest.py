"""Digest and Content-Digest are checked against the raw body bytes."""

from __future__ import annotations

import base64
import hashlib

import pytest

from fedsx.httpsig import (
    HttpRequest,
    SignatureError,
    content_digest_header,
    digest_header,
    verify_digest,
)

BODY = b'{"hello": "world"}'
SHA256 = base64.b64encode(hashlib.sha256(BODY).digest()).decode()
SHA512 = base64.b64encode(hashlib.sha512(BODY).digest()).decode()


def request(headers, body=BODY) -> HttpRequest:
    return HttpRequest.build("POST", "/inbox", headers, body)


def code(headers, body=BODY) -> str:
    with pytest.raises(SignatureError) as info:
        verify_digest(request(headers, body))
    assert not info.value.unexpected
    return info.value.code


@pytest.mark.parametrize(
    "headers",
    [
        {"Digest": f"SHA-256={SHA256}"},
        {"Digest": f"sha-256={SHA256}"},
        {"Digest": f"SHA-512={SHA512}"},
        {"Digest": f"MD5=xyz, SHA-256={SHA256}"},  # unknown algorithms are ignored
        {"Content-Digest": f"sha-256=:{SHA256}:"},
        {"Content-Digest": f"sha-512=:{SHA512}:, md5=:AAAA:"},
        {"Digest": f"SHA-256={SHA256}", "Content-Digest": f"sha-512=:{SHA512}:"},
        # The RFC 9421 test request's digest (fixture).
        {
            "Content-Digest": "sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIi"
            "Yllu7BNNyealdVLvRwEmTHWXvJwew==:"
        },
    ],
)
def test_matching_digests(headers):
    verify_digest(request(headers))


def test_the_cavage_fixture_digest():
    verify_digest(request({"Digest": "SHA-256=X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE="}))


def test_our_headers():
    verify_digest(request({"Digest": digest_header(BODY)}))
    verify_digest(request({"Content-Digest": content_digest_header(BODY)}))
    verify_digest(request({"Content-Digest": content_digest_header(BODY, "sha-512")}))


def test_raw_bytes_not_reserialised_json():
    # Same JSON, different bytes: the digest of the other spelling does not match.
    assert code({"Digest": f"SHA-256={SHA256}"}, b'{"hello":"world"}') == "digest_mismatch"


@pytest.mark.parametrize(
    "headers",
    [
        {"Digest": f"SHA-256={SHA512}"},
        {"Digest": f"SHA-256={SHA256}, SHA-512={SHA256}"},  # every known entry must match
        {"Digest": "SHA-256=not base64!"},
        {"Content-Digest": f"sha-256=:{SHA512}:"},
        {"Content-Digest": "sha-256=:not base64:"},
        {"Content-Digest": f'sha-256="{SHA256}"'},  # a string, not a byte sequence
        {"Content-Digest": "garbage ((("},
        {"Content-Digest": "sha-256=:" + "A" * 10_000 + ":"},
        {"Digest": f"SHA-256={SHA256}", "Content-Digest": f"sha-256=:{SHA512}:"},
    ],
)
def test_mismatching_or_unreadable(headers):
    assert code(headers) == "digest_mismatch"


@pytest.mark.parametrize("headers", [{}, {"Digest": "MD5=abc"}, {"Content-Digest": "md5=:AAAA:"}])
def test_body_without_usable_digest(headers):
    assert code(headers) == "digest_missing"


def test_empty_body_needs_no_digest():
    verify_digest(request({}, b""))
    assert code({"Digest": f"SHA-256={SHA256}"}, b"") == "digest_mismatch"


def test_a_signed_md5_digest_beside_an_unsigned_content_digest_binds_nothing():
    """Only SHA-2 entries are checked, so the SHA-2 one must be in a signed field."""
    from fedsx.httpsig import HttpRequest, SignatureError, content_digest_header, verify_digest

    body = b'{"swapped": true}'
    request = HttpRequest.build(
        "POST",
        "/inbox",
        [
            ("Digest", "MD5=XUFAKrxLKna5cZ2REBfFkg=="),
            ("Content-Digest", content_digest_header(body)),
        ],
        body,
    )
    verify_digest(request)  # every SHA-2 entry present matches
    with pytest.raises(SignatureError) as refused:
        verify_digest(request, signed_fields={"digest"})
    assert refused.value.code == "digest_missing"
    verify_digest(request, signed_fields={"content-digest"})
