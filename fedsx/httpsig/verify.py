"""The inbox's entry points: find the signature on a request, then verify it."""

from __future__ import annotations

from datetime import datetime

from . import cavage, rfc9421
from .digest import verify_digest
from .errors import SignatureError, refuse_unexpected
from .keys import PublicKey
from .message import HttpRequest
from .signature import ParsedSignature, Window, requires_digest


@refuse_unexpected
def parse_signatures(request: HttpRequest) -> list[ParsedSignature]:
    """Every signature on the request: RFC 9421 labels in order, or the one cavage signature.

    ``Signature-Input`` means RFC 9421; otherwise ``Signature`` or ``Authorization:
    Signature ...`` means draft-cavage. Raises ``missing_signature`` or ``malformed_signature``.
    """
    headers = request.headers
    if "signature-input" in headers:
        return list(rfc9421.parse_all(headers["signature-input"], headers.get("signature")))
    if "signature" in headers:
        return [cavage.parse(headers["signature"])]
    scheme, _, rest = headers.get("authorization", "").strip().partition(" ")
    if scheme.lower() == "signature":
        return [cavage.parse(rest)]
    raise SignatureError("missing_signature", "the request is not signed")


def parse_signature(request: HttpRequest) -> ParsedSignature:
    """The signature to verify: the first of ``parse_signatures``."""
    return parse_signatures(request)[0]


@refuse_unexpected
def verify_request(
    request: HttpRequest,
    parsed: ParsedSignature,
    public_key: PublicKey,
    *,
    now: datetime,
    max_skew: int,
    max_age: int,
    scheme: str = "https",
) -> None:
    """Verify ``parsed`` (from ``parse_signature(request)``) with the signer's public key.

    In order, cheapest first: coverage policy (``headers_not_covered``), signing time window
    (``invalid_date``, ``date_out_of_window``, ``signature_expired``), body digest when the
    request has or may have content (``digest_missing``, ``digest_mismatch``), and the
    signature itself (``bad_signature``, ``unsupported_algorithm``). Returns None when the
    request is authentic. ``scheme`` is our public URL's scheme, for RFC 9421 ``@target-uri``.
    """
    parsed.check_coverage(request)
    parsed.check_freshness(request, Window(now, max_skew, max_age))
    if requires_digest(request) or parsed.covers("digest") or parsed.covers("content-digest"):
        signed = {name for name in ("digest", "content-digest") if parsed.covers(name)}
        verify_digest(request, signed_fields=signed)
    parsed.check_signature(request, public_key, scheme=scheme)
