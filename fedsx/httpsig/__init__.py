"""HTTP signatures for the inbox: draft-cavage-12 and RFC 9421, verified and produced.

Pure functions over an ``HttpRequest``; no database, no network. The caller finds the key
for ``parse_signature(request).key_id`` and passes it to ``verify_request``::

    request = HttpRequest.from_wsgi(django_request.META, django_request.body)
    parsed = parse_signature(request)                  # SignatureError if absent/unreadable
    key = load_public_key(actor["publicKey"]["publicKeyPem"])
    verify_request(request, parsed, key, now=now, max_skew=300, max_age=3600)

Outbound requests are signed with ``sign_request`` (draft-cavage by default, or RFC 9421)::

    headers |= sign_request("POST", inbox_url, headers, body, key_id=key_id,
                            private_key_pem=pem, scheme=CAVAGE)

Every function raises ``SignatureError`` (with ``.code`` and ``.detail``) and nothing else
for anything a peer can send.
"""

from .cavage import sign_cavage
from .digest import content_digest_header, digest_header, verify_digest
from .errors import SignatureError
from .keys import PrivateKey, PublicKey, load_jwk, load_multikey, load_private_key, load_public_key
from .message import Headers, HttpRequest
from .rfc9421 import sign_rfc9421
from .sign import CAVAGE, RFC9421, other_scheme, sign_request
from .signature import ParsedSignature
from .verify import parse_signature, parse_signatures, verify_request

__all__ = [
    "CAVAGE",
    "RFC9421",
    "Headers",
    "HttpRequest",
    "ParsedSignature",
    "PrivateKey",
    "PublicKey",
    "SignatureError",
    "content_digest_header",
    "digest_header",
    "load_jwk",
    "load_multikey",
    "load_private_key",
    "load_public_key",
    "other_scheme",
    "parse_signature",
    "parse_signatures",
    "sign_cavage",
    "sign_request",
    "sign_rfc9421",
    "verify_digest",
    "verify_request",
]
