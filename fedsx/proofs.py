"""Object Integrity Proofs (FEP-8b32): W3C Data Integrity ``eddsa-jcs-2022``.

A proof is an Ed25519 signature over ``SHA-256(JCS(proof options)) || SHA-256(JCS(document))``
(the proof's hash first), embedded in the document as ``proof``. It travels with the document,
so a copy forwarded or relayed by a third server can still be traced to its author; an HTTP
signature only names whoever delivered it.

Keys are written as FEP-521a Multikeys: ``publicKeyMultibase`` = "z" + base58btc(0xed01 + key),
the secret key "z" + base58btc(0x8026 + seed).

Public API (stable, used by the inbox for forwarded activities):

* ``sign(document, private_key, verification_method, created=...) -> dict``
* ``verify(document, public_key) -> None``, raising ``ProofError`` (with a short ``code``)
* ``proof_of(document) -> dict``: the proof to verify (to read its ``verificationMethod``)
* ``encode_public_key`` / ``decode_public_key``, ``encode_secret_key`` / ``decode_secret_key``
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

import base58
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from fedsx.cid import CanonicalizationError, canonical_json
from fedsx.vocab import as_list

CRYPTOSUITE = "eddsa-jcs-2022"
PROOF_TYPE = "DataIntegrityProof"
PROOF_PURPOSE = "assertionMethod"

# The JSON-LD contexts that define the terms a proof and a Multikey use.
DATA_INTEGRITY_CONTEXT = "https://w3id.org/security/data-integrity/v1"
MULTIKEY_CONTEXT = "https://w3id.org/security/multikey/v1"

# Multicodec prefixes (unsigned varints): ed25519-pub 0xed, ed25519-priv 0x1300.
_ED25519_PUB = b"\xed\x01"
_ED25519_PRIV = b"\x80\x26"
_KEY_LEN = 32
_SIGNATURE_LEN = 64


class ProofError(ValueError):
    """A proof that does not hold. ``code`` is short and stable (it becomes an API error code):

    ``no_proof``, ``malformed_proof``, ``unknown_proof_type``, ``unknown_cryptosuite``,
    ``wrong_proof_purpose``, ``context_mismatch``, ``proof_expired``, ``malformed_multibase``,
    ``bad_signature``.
    """

    def __init__(self, code: str, detail: str):
        super().__init__(detail)
        self.code = code
        self.detail = detail


# --- multibase / Multikey -------------------------------------------------------------------


def _multibase_decode(value: Any, prefix: bytes, what: str) -> bytes:
    if not isinstance(value, str) or not value.startswith("z"):
        raise ProofError("malformed_multibase", f"{what} is not a base58btc multibase string")
    try:
        raw = base58.b58decode(value[1:])
    except ValueError:
        raise ProofError("malformed_multibase", f"{what} is not valid base58btc") from None
    if not raw.startswith(prefix) or len(raw) != len(prefix) + _KEY_LEN:
        raise ProofError("malformed_multibase", f"{what} is not an Ed25519 key")
    return raw[len(prefix) :]


def encode_public_key(public_key: Ed25519PublicKey) -> str:
    """The key's FEP-521a ``publicKeyMultibase``."""
    raw = public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return "z" + base58.b58encode(_ED25519_PUB + raw).decode("ascii")


def decode_public_key(multibase: str) -> Ed25519PublicKey:
    """An Ed25519 public key from a ``publicKeyMultibase``; ``ProofError`` if it is not one."""
    raw = _multibase_decode(multibase, _ED25519_PUB, "publicKeyMultibase")
    return Ed25519PublicKey.from_public_bytes(raw)


def encode_secret_key(private_key: Ed25519PrivateKey) -> str:
    """The key's ``secretKeyMultibase`` (the 32-byte seed)."""
    seed = private_key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    return "z" + base58.b58encode(_ED25519_PRIV + seed).decode("ascii")


def decode_secret_key(multibase: str) -> Ed25519PrivateKey:
    raw = _multibase_decode(multibase, _ED25519_PRIV, "secretKeyMultibase")
    return Ed25519PrivateKey.from_private_bytes(raw)


def generate_keypair() -> tuple[str, str]:
    """A fresh Ed25519 key pair as (secretKeyMultibase, publicKeyMultibase)."""
    key = Ed25519PrivateKey.generate()
    return encode_secret_key(key), encode_public_key(key.public_key())


# --- the proof ------------------------------------------------------------------------------


def _hash_data(proof_options: dict, unsecured: dict) -> bytes:
    try:
        return (
            hashlib.sha256(canonical_json(proof_options)).digest()
            + hashlib.sha256(canonical_json(unsecured)).digest()
        )
    except CanonicalizationError as exc:
        raise ProofError(
            "malformed_proof", f"the document has no canonical JSON form: {exc}"
        ) from None


def _timestamp(created: datetime | str | None) -> str:
    if isinstance(created, str):
        return created
    moment = (created or datetime.now(UTC)).astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def sign(
    document: dict,
    private_key: Ed25519PrivateKey,
    verification_method: str,
    created: datetime | str | None = None,
    *,
    embed_context: bool = True,
) -> dict:
    """A copy of ``document`` carrying an ``eddsa-jcs-2022`` proof (any old ``proof`` replaced).

    ``created`` (default now) is written to the second, or used as given if a string.
    The proof repeats the document's ``@context`` (as vc-di-eddsa v1.1 and FEP-8b32 today do);
    ``embed_context=False`` leaves it out, as proofs made before 2024 did.
    """
    unsecured = {key: value for key, value in document.items() if key != "proof"}
    options: dict[str, Any] = {
        "type": PROOF_TYPE,
        "cryptosuite": CRYPTOSUITE,
        "verificationMethod": verification_method,
        "proofPurpose": PROOF_PURPOSE,
        "created": _timestamp(created),
    }
    if embed_context and "@context" in unsecured:
        options["@context"] = unsecured["@context"]
    signature = private_key.sign(_hash_data(options, unsecured))
    proof = {**options, "proofValue": "z" + base58.b58encode(signature).decode("ascii")}
    return {**unsecured, "proof": proof}


def proof_of(document: Any) -> dict:
    """The document's one proof; ``ProofError`` if it has none or it is not an object.

    A proof set holding a single proof is accepted; several proofs are not (nothing we talk to
    sends them, and choosing among them is a policy this module does not make).
    """
    if not isinstance(document, dict) or "proof" not in document:
        raise ProofError("no_proof", "the document carries no proof")
    proof = document["proof"]
    if isinstance(proof, list) and len(proof) == 1:
        proof = proof[0]
    if not isinstance(proof, dict):
        raise ProofError("malformed_proof", "proof must be one JSON object")
    return proof


def _check_options(proof: dict, document: dict) -> None:
    if proof.get("type") != PROOF_TYPE:
        raise ProofError("unknown_proof_type", f"proof type must be {PROOF_TYPE}")
    if proof.get("cryptosuite") != CRYPTOSUITE:
        raise ProofError("unknown_cryptosuite", f"cryptosuite must be {CRYPTOSUITE}")
    if proof.get("proofPurpose") != PROOF_PURPOSE:
        raise ProofError("wrong_proof_purpose", f"proofPurpose must be {PROOF_PURPOSE}")
    if not isinstance(proof.get("verificationMethod"), str):
        raise ProofError("malformed_proof", "verificationMethod must be a string")
    if "@context" in proof and not _context_starts_with(
        document.get("@context"), proof["@context"]
    ):
        raise ProofError("context_mismatch", "the document's @context must start with the proof's")
    expires = proof.get("expires")
    if expires is not None and _expired(expires):
        raise ProofError("proof_expired", "the proof has expired")


def _context_starts_with(document_context: Any, proof_context: Any) -> bool:
    if document_context is None:
        return False
    ours, theirs = as_list(document_context), as_list(proof_context)
    return ours[: len(theirs)] == theirs


def _expired(expires: Any) -> bool:
    try:
        moment = datetime.fromisoformat(str(expires).replace("Z", "+00:00"))
    except ValueError:
        raise ProofError("malformed_proof", "expires is not a date-time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment < datetime.now(UTC)


def verify(document: dict, public_key: Ed25519PublicKey | str) -> None:
    """Check the document's ``eddsa-jcs-2022`` proof against ``public_key`` (a key or its
    ``publicKeyMultibase``). Returns nothing; raises ``ProofError`` on any failure.

    The caller decides whose key it is: the key must be one the document's author lists under
    ``assertionMethod`` (FEP-521a), found through ``proof_of(document)["verificationMethod"]``.
    An LD signature (``signature``) added after the proof, as Mastodon adds one, is left out.
    """
    proof = proof_of(document)
    _check_options(proof, document)
    value = proof.get("proofValue")
    if not isinstance(value, str) or not value.startswith("z"):
        raise ProofError("malformed_multibase", "proofValue is not a base58btc multibase string")
    try:
        signature = base58.b58decode(value[1:])
    except ValueError:
        raise ProofError("malformed_multibase", "proofValue is not valid base58btc") from None
    if len(signature) != _SIGNATURE_LEN:
        raise ProofError("malformed_multibase", "proofValue is not an Ed25519 signature")
    if not isinstance(public_key, Ed25519PublicKey):
        public_key = decode_public_key(public_key)

    unsecured = {key: item for key, item in document.items() if key not in ("proof", "signature")}
    options = {key: item for key, item in proof.items() if key != "proofValue"}
    if "@context" in options:
        unsecured["@context"] = options["@context"]
    try:
        public_key.verify(signature, _hash_data(options, unsecured))
    except InvalidSignature:
        raise ProofError("bad_signature", "the proof's signature does not verify") from None
