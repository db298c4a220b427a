"""draft-cavage-http-signatures-12, as Mastodon, Pleroma, Misskey and GoToSocial send it.

    Signature: keyId="https://a.example/users/bob#main-key",algorithm="rsa-sha256",
               headers="(request-target) host date digest",signature="Base64..."

The signing string is one ``name: value`` line per entry of ``headers``, in that order.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

from . import algorithms
from .digest import digest_header
from .errors import SignatureError
from .keys import PrivateKey, PublicKey, key_kind, signing_key
from .message import HeaderFields, Headers, HttpRequest
from .signature import ParsedSignature, format_http_date, requires_digest, timestamp

# Longest Signature header worth reading (gunicorn itself stops at 8 KiB per field).
MAX_FIELD_CHARS = 16 * 1024
PSEUDO_HEADERS = frozenset({"(request-target)", "(created)", "(expires)"})
# Without headers=, the appendix C examples (and Mastodon-era servers) sign just "date";
# section 2.1.6 of the same draft says "(created)". We follow the examples.
DEFAULT_HEADERS = ("date",)

# One `name="value"` or `name=123` parameter and the comma after it.
_PARAM = re.compile(
    r"[ \t]*([A-Za-z][A-Za-z0-9_-]{0,31})[ \t]*=[ \t]*"
    r'(?:"([^"]*)"|([0-9]{1,20}(?:\.[0-9]{1,9})?))[ \t]*(?:,|\Z)'
)


@dataclass(frozen=True, kw_only=True)
class CavageSignature(ParsedSignature):
    created_text: str | None = None  # (created)/(expires) exactly as sent, for the string
    expires_text: str | None = None

    def covers(self, name: str) -> bool:
        return name in self.covered

    def check_coverage(self, request: HttpRequest) -> None:
        missing = [name for name in ("(request-target)", "host") if name not in self.covered]
        if "date" not in self.covered and "(created)" not in self.covered:
            missing.append("date")
        if requires_digest(request) and not ({"digest", "content-digest"} & set(self.covered)):
            missing.append("digest")
        if missing:
            raise SignatureError(
                "headers_not_covered", f"the signature must cover {' '.join(missing)}"
            )
        for name in self.covered:
            if name not in PSEUDO_HEADERS and name not in request.headers:
                raise SignatureError(
                    "headers_not_covered", f"the signed header {name[:40]!r} is absent"
                )

    def check_signature(self, request: HttpRequest, key: PublicKey, *, scheme: str = "") -> None:
        algorithm = algorithms.for_cavage(self.algorithm, key)
        if algorithm.verify(key, self.signature, self.signing_string(request, request.path)):
            return
        # Mastodon and GoToSocial also accept (request-target) signed without the query.
        if "(request-target)" in self.covered and request.query is not None:
            bare_path = request.path.partition("?")[0]
            if algorithm.verify(key, self.signature, self.signing_string(request, bare_path)):
                return
        raise SignatureError("bad_signature", "the signature does not verify")

    def signing_string(self, request: HttpRequest, target: str) -> bytes:
        lines = []
        for name in self.covered:
            if name == "(request-target)":
                value: str | None = f"{request.method.lower()} {target}"
            elif name == "(created)":
                value = self.created_text
            elif name == "(expires)":
                value = self.expires_text
            else:
                value = request.headers.get(name)
            if value is None:
                raise SignatureError("headers_not_covered", f"{name[:40]!r} has no value")
            lines.append(f"{name}: {value}")
        text = "\n".join(lines)
        try:
            # Header values from WSGI are Latin-1 decoded bytes: this restores the bytes.
            return text.encode("latin-1")
        except UnicodeEncodeError:
            return text.encode("utf-8", "replace")


def parse(value: str) -> CavageSignature:
    """Read a ``Signature`` header value (or what follows ``Authorization: Signature``)."""
    params = _params(value)
    key_id = params.get("keyid")
    if not key_id:
        raise SignatureError("malformed_signature", "the signature has no keyId")
    covered = tuple(params.get("headers", " ".join(DEFAULT_HEADERS)).lower().split())
    if not covered:
        raise SignatureError("malformed_signature", "the signature's headers list is empty")
    for name in covered:
        if name.startswith("(") and name not in PSEUDO_HEADERS:
            raise SignatureError("malformed_signature", f"unknown pseudo-header {name[:40]!r}")
    created_text = _signed_time(params, "created", "(created)" in covered)
    expires_text = _signed_time(params, "expires", "(expires)" in covered)
    return CavageSignature(
        scheme="cavage",
        key_id=key_id,
        algorithm=params.get("algorithm"),
        covered=covered,
        created=timestamp(int(float(created_text)), "created") if created_text else None,
        expires=timestamp(int(float(expires_text)), "expires") if expires_text else None,
        signature=_signature_bytes(params.get("signature")),
        created_text=created_text,
        expires_text=expires_text,
    )


def sign_cavage(
    method: str,
    url: str,
    headers: HeaderFields | None,
    body: bytes | None,
    key_id: str,
    private_key: str | PrivateKey,
    *,
    now: datetime | None = None,
) -> dict[str, str]:
    """Headers to add to a request to sign it Mastodon-style (Date, Digest, Host, Signature).

    Covers ``(request-target) host date``, plus ``digest`` when there is a body and
    ``content-type`` when given. RSA keys sign ``rsa-sha256``; Ed25519 and P-256 ``hs2019``.
    ``private_key`` is PEM text (parsed once, then cached) or a key already loaded.
    """
    if '"' in key_id:
        raise ValueError("a keyId cannot contain a double quote")
    key = signing_key(private_key)
    parts = urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    given = list(headers.items() if isinstance(headers, Mapping) else headers or ())
    present = Headers(given)
    added: dict[str, str] = {}
    if "host" not in present:
        added["Host"] = parts.netloc.rpartition("@")[2].lower()
    if "date" not in present:
        added["Date"] = format_http_date(now or datetime.now(UTC))
    covered = ["(request-target)", "host", "date"]
    if body is not None:
        added["Digest"] = digest_header(body)
        covered.append("digest")
    if "content-type" in present:
        covered.append("content-type")
    replaced = {name.lower() for name in added}
    fields = [(n, v) for n, v in given if n.strip().lower() not in replaced] + list(added.items())
    request = HttpRequest.build(method, target, fields, body)
    algorithm = algorithms.for_cavage(None, key)
    name = "rsa-sha256" if key_kind(key) == "rsa" else "hs2019"
    unsigned = CavageSignature(
        scheme="cavage",
        key_id=key_id,
        algorithm=name,
        covered=tuple(covered),
        created=None,
        expires=None,
        signature=b"",
    )
    signature = algorithm.sign(key, unsigned.signing_string(request, target))
    added["Signature"] = (
        f'keyId="{key_id}",algorithm="{name}",headers="{" ".join(covered)}",'
        f'signature="{base64.b64encode(signature).decode("ascii")}"'
    )
    return added


def _params(value: str) -> dict[str, str]:
    if len(value) > MAX_FIELD_CHARS:
        raise SignatureError("malformed_signature", "the Signature header is too long")
    params: dict[str, str] = {}
    pos, end = 0, len(value.rstrip(" \t"))
    while pos < end:
        match = _PARAM.match(value, pos)
        if match is None:
            raise SignatureError("malformed_signature", "the Signature header cannot be parsed")
        name = match.group(1).lower()
        if name in params:
            raise SignatureError("malformed_signature", f"parameter {name!r} appears twice")
        params[name] = match.group(2) if match.group(2) is not None else match.group(3)
        pos = match.end()
    return params


def _signed_time(params: dict[str, str], name: str, signed: bool) -> str | None:
    # Only a signed created/expires means anything; an unsigned one could be anything.
    if not signed:
        return None
    text = params.get(name)
    if text is None or not re.fullmatch(r"[0-9]{1,20}(\.[0-9]{1,9})?", text):
        raise SignatureError("malformed_signature", f"({name}) is signed but {name}= is missing")
    return text


def _signature_bytes(text: str | None) -> bytes:
    if not text:
        raise SignatureError("malformed_signature", "the signature has no signature value")
    try:
        raw = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SignatureError("malformed_signature", "the signature value is not base64") from exc
    if not raw:
        raise SignatureError("malformed_signature", "the signature value is empty")
    return raw
