"""Linked Data Signatures (``RsaSignature2017``) as Mastodon makes them for activities it
expects to be forwarded.

What is signed is the RDF of the document, not its JSON: hex(SHA-256(canonical options)) +
hex(SHA-256(canonical document)), RSASSA-PKCS1-v1_5 / SHA-256, where the options are the
``signature`` object without ``type``, ``id`` and ``signatureValue`` under the identity/v1
context, and the document is the activity without ``signature``. So JSON keys that the
document's contexts do not define are not signed at all: ``signed_data`` gives what is.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import Any

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from . import jsonld
from .jsonld import JsonLdUnavailable

SIGNATURE_TYPE = "RsaSignature2017"
OPTIONS_CONTEXT = "https://w3id.org/identity/v1"
# JSON-LD processing costs far more per byte than anything else the inbox does, and signed
# activities are a few KB: above this, the LD signature is treated as absent.
MAX_LD_BYTES = 64 * 1024

__all__ = [
    "JsonLdUnavailable",
    "LDSignatureError",
    "creator",
    "signed_data",
    "to_be_verified",
    "verify",
]


class LDSignatureError(Exception):
    """The signature is there but does not verify."""


def creator(document: dict[str, Any]) -> str:
    """The keyId an RsaSignature2017 names, or '' when the document carries none."""
    signature = document.get("signature")
    if not isinstance(signature, dict) or signature.get("type") != SIGNATURE_TYPE:
        return ""
    value = signature.get("creator")
    return value if isinstance(value, str) else ""


def verify(document: dict[str, Any], public_key: Any, data: bytes | None = None) -> None:
    """Check ``document``'s RsaSignature2017 with ``public_key``; raises LDSignatureError
    when it does not verify and JsonLdUnavailable when it cannot be checked offline.
    ``data``: ``to_be_verified(document)``, when the caller has it already."""
    signature = document.get("signature")
    if not creator(document) or not isinstance(signature.get("signatureValue"), str):
        raise LDSignatureError("no RsaSignature2017 with a creator and a signatureValue")
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise LDSignatureError("the creator's key is not an RSA key")
    try:
        value = base64.b64decode(signature["signatureValue"], validate=True)
    except (binascii.Error, ValueError):
        raise LDSignatureError("the signatureValue is not base64") from None
    try:
        data = data if data is not None else to_be_verified(document)
        public_key.verify(value, data, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        raise LDSignatureError("the LD signature does not verify") from None


def to_be_verified(document: dict[str, Any]) -> bytes:
    """The bytes the signature is over (two canonicalisations: compute once per document);
    raises JsonLdUnavailable."""
    if len(orjson.dumps(document)) > MAX_LD_BYTES:
        raise JsonLdUnavailable(f"more than {MAX_LD_BYTES} bytes of JSON-LD")
    options = {
        key: value
        for key, value in document["signature"].items()
        if key not in ("type", "id", "signatureValue")
    }
    options["@context"] = OPTIONS_CONTEXT
    unsigned = {key: value for key, value in document.items() if key != "signature"}
    return (_digest(options) + _digest(unsigned)).encode("ascii")


def _digest(document: dict[str, Any]) -> str:
    return hashlib.sha256(jsonld.canonical_nquads(document).encode("utf-8")).hexdigest()


def signed_data(document: dict[str, Any]) -> dict[str, Any]:
    """What the signature covers, compacted against the document's own context, with the
    signature kept (so the activity can be forwarded on). Keys the context does not define
    (the "forged LD" trick: a ``null`` in the context wiping the ActivityStreams terms) are
    not in it."""
    unsigned = {key: value for key, value in document.items() if key != "signature"}
    context = unsigned.get("@context")
    compacted = jsonld.compact(unsigned, context if context is not None else {})
    return {**compacted, "signature": document["signature"]}
