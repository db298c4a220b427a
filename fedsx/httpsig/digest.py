"""Body digests: ``Digest`` (RFC 3230, draft-cavage) and ``Content-Digest`` (RFC 9530).

Always checked against the raw bytes received, never a re-serialisation of the JSON.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

import http_sfv

from .errors import SignatureError, refuse_unexpected
from .message import HttpRequest

# Header algorithm names -> hashlib names. Others (md5, sha, unixsum, ...) are ignored.
_DIGEST_ALGORITHMS = {"sha-256": "sha256", "sha-512": "sha512"}
MAX_DIGEST_FIELD = 4096


@refuse_unexpected
def verify_digest(request: HttpRequest, signed_fields: set[str] | None = None) -> None:
    """Check every SHA-256/SHA-512 entry of ``Digest`` and ``Content-Digest`` against the body.

    A body with no such entry at all raises ``digest_missing``; an empty body without one is
    fine. A wrong or unreadable entry raises ``digest_mismatch``. With ``signed_fields`` (the
    lower-case digest fields the signature covers), a body also needs a SHA-2 entry in one
    of them: a signed ``Digest: MD5=…`` beside an unsigned ``Content-Digest`` binds nothing.
    """
    claims = _claims(request)
    if not claims:
        if request.body:
            raise SignatureError("digest_missing", "the body has no SHA-256/512 digest")
        return
    for field, algorithm, expected in claims:
        if not hmac.compare_digest(request.body_digest(algorithm), expected):
            raise SignatureError(
                "digest_mismatch", f"the {field} {algorithm} value does not match the body"
            )
    signed = signed_fields is None or any(field.lower() in signed_fields for field, _, _ in claims)
    if request.body and not signed:
        raise SignatureError("digest_missing", "the signed digest has no SHA-256/512 value")


def digest_header(body: bytes) -> str:
    """A ``Digest`` value for ``body`` as Mastodon sends it."""
    return "SHA-256=" + base64.b64encode(hashlib.sha256(body).digest()).decode("ascii")


def content_digest_header(body: bytes, algorithm: str = "sha-256") -> str:
    """A ``Content-Digest`` value for ``body`` (``sha-256`` or ``sha-512``)."""
    digest = hashlib.new(_DIGEST_ALGORITHMS[algorithm], body).digest()
    return str(http_sfv.Dictionary({algorithm: digest}))


def _claims(request: HttpRequest) -> list[tuple[str, str, bytes]]:
    claims = []
    if "digest" in request.headers:
        claims += [("Digest", *c) for c in _digest_claims(request.headers["digest"])]
    if "content-digest" in request.headers:
        claims += [
            ("Content-Digest", *c)
            for c in _content_digest_claims(request.headers["content-digest"])
        ]
    return claims


def _digest_claims(value: str) -> list[tuple[str, bytes]]:
    if len(value) > MAX_DIGEST_FIELD:
        raise SignatureError("digest_mismatch", "the Digest header is too long")
    claims = []
    for entry in value.split(","):
        name, sep, encoded = entry.strip().partition("=")
        algorithm = _DIGEST_ALGORITHMS.get(name.strip().lower())
        if not sep or algorithm is None:
            continue
        try:
            claims.append((algorithm, base64.b64decode(encoded.strip(), validate=True)))
        except (binascii.Error, ValueError) as exc:
            raise SignatureError(
                "digest_mismatch", f"the Digest {name} value is not base64"
            ) from exc
    return claims


def _content_digest_claims(value: str) -> list[tuple[str, bytes]]:
    if len(value) > MAX_DIGEST_FIELD:
        raise SignatureError("digest_mismatch", "the Content-Digest header is too long")
    parsed = http_sfv.Dictionary()
    try:
        parsed.parse(value.encode("ascii"))
    except ValueError as exc:
        raise SignatureError("digest_mismatch", "the Content-Digest header is malformed") from exc
    claims = []
    for name, member in parsed.items():
        algorithm = _DIGEST_ALGORITHMS.get(name)
        if algorithm is None:
            continue
        if not isinstance(member, http_sfv.Item) or not isinstance(member.value, bytes):
            raise SignatureError("digest_mismatch", f"the Content-Digest {name} is not bytes")
        claims.append((algorithm, member.value))
    return claims
