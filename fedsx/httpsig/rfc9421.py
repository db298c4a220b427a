"""RFC 9421 HTTP Message Signatures on requests (``Signature-Input`` + ``Signature``).

    Signature-Input: sig1=("@method" "@target-uri" "content-digest");created=1700000000;
                     keyid="https://a.example/users/bob#main-key";alg="rsa-v1_5-sha256"
    Signature: sig1=:Base64...:

Both fields are Structured Field dictionaries, read with ``http_sfv``. The signature base
is one ``"component": value`` line per covered component, then ``"@signature-params"``.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import parse_qs, quote, unquote, urlsplit

import http_sfv

from . import algorithms
from .digest import content_digest_header
from .errors import SignatureError
from .keys import PrivateKey, PublicKey, signing_key
from .message import HeaderFields, Headers, HttpRequest
from .signature import ParsedSignature, requires_digest, timestamp

MAX_FIELD_CHARS = 16 * 1024  # http_sfv slices as it parses: keep its input small
DEFAULT_PORTS = {"http": "80", "https": "443"}
# Fields whose ;sf re-serialisation we know how to do (RFC 9421 section 2.1.1).
SF_FIELD_TYPES = {
    "content-digest": http_sfv.Dictionary,
    "repr-digest": http_sfv.Dictionary,
    "want-content-digest": http_sfv.Dictionary,
    "signature": http_sfv.Dictionary,
    "signature-input": http_sfv.Dictionary,
    "accept-signature": http_sfv.Dictionary,
    "priority": http_sfv.Dictionary,
    "cache-status": http_sfv.List,
    "proxy-status": http_sfv.List,
}
DERIVED = frozenset(
    {"@method", "@target-uri", "@authority", "@scheme", "@request-target", "@path", "@query"}
)
FIELD_PARAMS = frozenset({"sf", "key", "bs"})


@dataclass(frozen=True, kw_only=True)
class MessageSignature(ParsedSignature):
    components: tuple[http_sfv.Item, ...] = field(repr=False, compare=False, default=())
    params_value: str = ""  # the @signature-params value (the inner list, re-serialised)

    def covers(self, name: str) -> bool:
        return any(item.value == name and not item.params for item in self.components)

    def check_coverage(self, request: HttpRequest) -> None:
        missing = []
        if not self.covers("@method"):
            missing.append("@method")
        if not (
            self.covers("@target-uri")
            or (
                self.covers("@authority")
                and (self.covers("@path") or self.covers("@request-target"))
            )
        ):
            missing.append("@target-uri (or @authority and @path)")
        if requires_digest(request) and not (
            self.covers("content-digest") or self.covers("digest")
        ):
            missing.append("content-digest")
        if self.created is None and not self.covers("date"):
            missing.append("created (or date)")
        if missing:
            raise SignatureError(
                "headers_not_covered", f"the signature must cover {', '.join(missing)}"
            )

    def check_signature(
        self, request: HttpRequest, key: PublicKey, *, scheme: str = "https"
    ) -> None:
        base = self.signature_base(request, scheme)
        for algorithm in algorithms.for_message(self.algorithm, key):
            if algorithm.verify(key, self.signature, base):
                return
        raise SignatureError("bad_signature", "the signature does not verify")

    def signature_base(self, request: HttpRequest, scheme: str) -> bytes:
        resolver = _Resolver(request, scheme)
        # ``covered`` holds each component id already serialised, in order.
        lines = [
            f"{cid}: {resolver.resolve(item)}"
            for cid, item in zip(self.covered, self.components, strict=True)
        ]
        lines.append(f'"@signature-params": {self.params_value}')
        text = "\n".join(lines)
        if not text.isascii():
            raise SignatureError("malformed_signature", "the signature base is not ASCII")
        return text.encode("ascii")


def parse_all(signature_input: str, signature: str | None) -> list[MessageSignature]:
    """Every usable signature on the request, in ``Signature-Input`` order."""
    inputs = _dictionary(signature_input, "Signature-Input")
    values = _dictionary(signature or "", "Signature") if signature else http_sfv.Dictionary()
    labels = tuple(label for label in inputs if label in values)
    found: list[MessageSignature] = []
    first_error: SignatureError | None = None
    for label in labels:
        try:
            found.append(_parse_one(label, inputs[label], values[label], labels))
        except SignatureError as exc:  # another label (a proxy's, say) may still be usable
            first_error = first_error or exc
    if not found:
        raise first_error or SignatureError(
            "malformed_signature", "no Signature-Input label has a matching Signature"
        )
    return found


def sign_rfc9421(
    method: str,
    url: str,
    headers: HeaderFields | None,
    body: bytes | None,
    key_id: str,
    private_key: str | PrivateKey,
    *,
    alg: str = "rsa-v1_5-sha256",
    now: datetime | None = None,
    label: str = "sig1",
) -> dict[str, str]:
    """Headers to add to sign a request (Content-Digest when there is a body, Host if absent,
    Signature-Input, Signature), covering ``@method @target-uri`` and ``content-digest``.
    ``private_key`` is PEM text (parsed once, then cached) or a key already loaded."""
    key = signing_key(private_key)
    algorithm = algorithms.MESSAGE_ALGORITHMS.get(alg)
    if algorithm is None:
        raise SignatureError("unsupported_algorithm", f"cannot sign with {alg!r}")
    parts = urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    given = list(headers.items() if isinstance(headers, Mapping) else headers or ())
    added: dict[str, str] = {}
    if "host" not in Headers(given):
        added["Host"] = parts.netloc.rpartition("@")[2].lower()
    covered = ["@method", "@target-uri"]
    if body is not None:
        added["Content-Digest"] = content_digest_header(body)
        covered.append("content-digest")
    replaced = {name.lower() for name in added}
    fields = [(n, v) for n, v in given if n.strip().lower() not in replaced] + list(added.items())
    request = HttpRequest.build(method, target, fields, body)
    inner = http_sfv.InnerList([http_sfv.Item(name) for name in covered])
    inner.params["created"] = int((now or datetime.now(UTC)).timestamp())
    inner.params["keyid"] = key_id
    inner.params["alg"] = alg
    unsigned = MessageSignature(
        scheme="rfc9421",
        key_id=key_id,
        algorithm=alg,
        covered=tuple(str(item) for item in inner),
        created=None,
        expires=None,
        signature=b"",
        components=tuple(inner),
        params_value=str(inner),
    )
    signature = algorithm.sign(key, unsigned.signature_base(request, parts.scheme or "https"))
    added["Signature-Input"] = str(http_sfv.Dictionary({label: inner}))
    added["Signature"] = str(http_sfv.Dictionary({label: signature}))
    return added


def _dictionary(value: str, name: str) -> http_sfv.Dictionary:
    if len(value) > MAX_FIELD_CHARS:
        raise SignatureError("malformed_signature", f"the {name} header is too long")
    parsed = http_sfv.Dictionary()
    try:
        parsed.parse(value.encode("ascii"))
    except ValueError as exc:  # UnicodeEncodeError included
        raise SignatureError("malformed_signature", f"the {name} header is malformed") from exc
    return parsed


def _parse_one(label: str, inner, value, labels: tuple[str, ...]) -> MessageSignature:
    if not isinstance(inner, http_sfv.InnerList):
        raise SignatureError("malformed_signature", f"{label}: Signature-Input is not a list")
    if (
        not isinstance(value, http_sfv.Item)
        or not isinstance(value.value, bytes)
        or not value.value
    ):
        raise SignatureError("malformed_signature", f"{label}: Signature is not a byte sequence")
    components = tuple(_checked_component(item) for item in inner)
    ids = [str(item) for item in components]
    if len(set(ids)) != len(ids):
        raise SignatureError("malformed_signature", f"{label}: a component is covered twice")
    params = inner.params
    key_id = params.get("keyid")
    if not isinstance(key_id, str) or not key_id:
        raise SignatureError("malformed_signature", f"{label}: no keyid")
    alg = params.get("alg")
    if alg is not None and not isinstance(alg, str):
        raise SignatureError("malformed_signature", f"{label}: alg is not a string")
    return MessageSignature(
        scheme="rfc9421",
        key_id=key_id,
        algorithm=alg,
        covered=tuple(ids),
        created=_time_param(params, "created"),
        expires=_time_param(params, "expires"),
        signature=value.value,
        label=label,
        labels=labels,
        components=components,
        params_value=str(inner),
    )


def _checked_component(item) -> http_sfv.Item:
    name = item.value
    if not isinstance(name, str) or not name or name != name.lower():
        raise SignatureError("malformed_signature", "component names are lowercase strings")
    params = set(item.params)
    if name.startswith("@"):
        allowed = {"name"} if name == "@query-param" else set()
        if name not in DERIVED and name != "@query-param":
            raise SignatureError("malformed_signature", f"unsupported component {name[:40]!r}")
    else:
        allowed = set(FIELD_PARAMS)
    if params - allowed:
        raise SignatureError(
            "malformed_signature", f"unsupported parameter on component {name[:40]!r}"
        )
    return item


def _time_param(params, name: str) -> datetime | None:
    value = params.get(name)
    if value is None:
        return None
    if type(value) is not int:  # bool is an int subclass: refuse it too
        raise SignatureError("malformed_signature", f"{name} is not an integer")
    return timestamp(value, name)


class _Resolver:
    """Component values of one request (RFC 9421 sections 2.1 and 2.2)."""

    def __init__(self, request: HttpRequest, scheme: str):
        self.request = request
        self.scheme = scheme.lower()

    def resolve(self, item: http_sfv.Item) -> str:
        name = item.value
        value = self._derived(item) if name.startswith("@") else self._field(item)
        if "\n" in value or "\r" in value:
            raise SignatureError("malformed_signature", f"{name[:40]!r} contains a line break")
        return value

    def _derived(self, item: http_sfv.Item) -> str:
        name, request = item.value, self.request
        if name == "@method":
            return request.method
        if name == "@authority":
            return self.authority()
        if name == "@scheme":
            return self.scheme
        if name == "@target-uri":
            return f"{self.scheme}://{self.authority()}{request.path}"
        if name == "@request-target":
            return request.path
        if name == "@path":
            return request.path_only
        if name == "@query":
            return "?" + (request.query or "")
        return self._query_param(item.params.get("name"))

    def authority(self) -> str:
        host = self.request.headers.get("host")
        if not host:
            raise SignatureError("headers_not_covered", "the request has no Host header")
        host = host.lower()
        name, colon, port = host.rpartition(":")
        if colon and "]" not in port and port == DEFAULT_PORTS.get(self.scheme):
            return name
        return host

    def _query_param(self, name) -> str:
        if not isinstance(name, str):
            raise SignatureError("malformed_signature", "@query-param needs a name")
        values = parse_qs(self.request.query or "", keep_blank_values=True).get(unquote(name))
        if values is None or len(values) != 1:
            raise SignatureError(
                "headers_not_covered", f"query parameter {name[:40]!r} is absent or repeated"
            )
        # Section 2.2.8: re-encoded with the form percent-encode set, spaces as %20.
        return quote(values[0], safe="*").replace("~", "%7E")

    def _field(self, item: http_sfv.Item) -> str:
        name, params = item.value, item.params
        lines = self.request.headers.lines(name)
        if not lines:
            raise SignatureError("headers_not_covered", f"the signed field {name[:40]!r} is absent")
        if params.get("bs"):
            return ", ".join(
                f":{base64.b64encode(line.encode('latin-1', 'replace')).decode()}:"
                for line in lines
            )
        value = ", ".join(lines)
        if "key" in params:
            return self._member(name, value, params["key"])
        if params.get("sf"):
            return self._reserialised(name, value)
        return value

    def _member(self, name: str, value: str, key) -> str:
        parsed = _structured(name, value, http_sfv.Dictionary)
        if not isinstance(key, str) or key not in parsed:
            raise SignatureError("headers_not_covered", f"{name[:40]!r} has no signed member")
        member = parsed[key]
        # A member is serialised as it would be on its own (a bare true is just "?1").
        return str(member)

    def _reserialised(self, name: str, value: str) -> str:
        kind = SF_FIELD_TYPES.get(name)
        if kind is None:
            raise SignatureError("malformed_signature", f"cannot re-serialise field {name[:40]!r}")
        return str(_structured(name, value, kind))


def _structured(name: str, value: str, kind):
    parsed = kind()
    try:
        parsed.parse(value.encode("ascii"))
    except ValueError as exc:
        raise SignatureError(
            "malformed_signature", f"{name[:40]!r} is not a structured field"
        ) from exc
    return parsed
