"""One way to sign an outbound request, in either scheme.

    headers |= sign_request("POST", inbox, headers, body, key_id=actor.key_id,
                            private_key_pem=actor.private_key_pem)          # draft-cavage
    headers |= sign_request(..., scheme=RFC9421)                            # RFC 9421

draft-cavage (the default) is what Mastodon, Pleroma, Misskey and GoToSocial verify:
``rsa-sha256`` over ``(request-target) host date`` and ``digest`` (``Digest: SHA-256=``)
when there is content, plus ``content-type`` when the caller gives one. RFC 9421 signs
``rsa-v1_5-sha256`` (the key's own algorithm for Ed25519 and P-256 keys) over ``@method
@target-uri`` and ``content-digest`` (``Content-Digest: sha-256=``), with ``created`` and
``keyid``. A GET (no body) is signed without a digest in either scheme.

The private key is parsed once and cached (``keys.load_private_key``): a delivery signs per
request without paying the PEM parse each time.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from .cavage import sign_cavage
from .keys import key_kind, load_private_key
from .rfc9421 import sign_rfc9421
from .signature import METHODS_WITH_CONTENT

CAVAGE, RFC9421 = "cavage", "rfc9421"
SCHEMES = (CAVAGE, RFC9421)
# RFC 9421 algorithm for each kind of key (section 3.3).
MESSAGE_ALGORITHMS = {
    "rsa": "rsa-v1_5-sha256",
    "ed25519": "ed25519",
    "ec-p256": "ecdsa-p256-sha256",
}


def sign_request(
    method: str,
    url: str,
    headers: Mapping[str, str] | None,
    body: bytes | None,
    *,
    key_id: str,
    private_key_pem: str,
    scheme: str = CAVAGE,
    now: datetime | None = None,
) -> dict[str, str]:
    """The headers to add to ``headers`` to sign the request (Host, Date or Digest or
    Content-Digest as needed, and the signature fields). ``ValueError`` for an unknown
    ``scheme``; ``SignatureError("bad_key")`` for an unusable key."""
    if scheme not in SCHEMES:
        raise ValueError(f"unknown signature scheme {scheme!r}; expected one of {SCHEMES}")
    key = load_private_key(private_key_pem)
    # A digest only where the request has content: a GET is signed without one.
    content = body if body or method.upper() in METHODS_WITH_CONTENT else None
    if scheme == CAVAGE:
        return sign_cavage(method, url, headers, content, key_id, key, now=now)
    alg = MESSAGE_ALGORITHMS[key_kind(key)]
    return sign_rfc9421(method, url, headers, content, key_id, key, alg=alg, now=now)


def other_scheme(scheme: str) -> str:
    """The scheme to try when a server refused ``scheme`` (401): cavage <-> rfc9421."""
    if scheme == CAVAGE:
        return RFC9421
    if scheme == RFC9421:
        return CAVAGE
    raise ValueError(f"unknown signature scheme {scheme!r}; expected one of {SCHEMES}")
