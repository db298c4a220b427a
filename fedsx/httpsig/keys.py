"""Loading the keys peers publish (PEM, JWK, Multikey) and our own private keys."""

from __future__ import annotations

import base64
import binascii
import hashlib
import threading
from collections import OrderedDict
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from .errors import SignatureError

PublicKey = rsa.RSAPublicKey | ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey
PrivateKey = rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey

# RSA sizes we verify: the draft-cavage test key is 1024-bit; above 8192 bits a verify
# gets expensive enough to be a lever against us and no server publishes such keys.
MIN_RSA_BITS = 1024
MAX_RSA_BITS = 8192
# Longest PEM worth parsing (an 8192-bit SPKI PEM is ~1.5 KiB).
MAX_PEM_CHARS = 16 * 1024


def load_public_key(pem: str) -> PublicKey:
    """A public key from PEM: SPKI ``PUBLIC KEY`` or PKCS#1 ``RSA PUBLIC KEY``.

    RSA (1024-8192 bits), Ed25519 and EC P-256 keys are accepted; anything else raises
    ``SignatureError("bad_key")``. Cached by PEM text, so callers may call it per request.
    """
    if not isinstance(pem, str) or len(pem) > MAX_PEM_CHARS:
        raise SignatureError("bad_key", "the key is not a PEM text of reasonable size")
    return _load_public_key(pem)


@lru_cache(maxsize=1024)
def _load_public_key(pem: str) -> PublicKey:
    try:
        key = serialization.load_pem_public_key(pem.strip().encode("ascii"))
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise SignatureError("bad_key", "the key is not a readable PEM public key") from exc
    return _checked(key)


def load_jwk(jwk: Mapping[str, Any]) -> PublicKey:
    """A public key from a JWK: ``RSA`` (n, e), ``OKP``/Ed25519 (x) or ``EC``/P-256 (x, y)."""
    try:
        kty = jwk["kty"]
        if kty == "RSA":
            key: Any = rsa.RSAPublicNumbers(_b64int(jwk["e"]), _b64int(jwk["n"])).public_key()
        elif kty == "OKP" and jwk.get("crv") == "Ed25519":
            key = ed25519.Ed25519PublicKey.from_public_bytes(_b64url(jwk["x"]))
        elif kty == "EC" and jwk.get("crv") == "P-256":
            numbers = ec.EllipticCurvePublicNumbers(
                _b64int(jwk["x"]), _b64int(jwk["y"]), ec.SECP256R1()
            )
            key = numbers.public_key()
        else:
            raise SignatureError("bad_key", "unsupported JWK key type")
    except SignatureError:
        raise
    except (KeyError, TypeError, ValueError, UnsupportedAlgorithm) as exc:
        raise SignatureError("bad_key", "the JWK is not a readable public key") from exc
    return _checked(key)


# Multicodec prefix of an Ed25519 public key in a Multikey (FEP-521a publicKeyMultibase).
_ED25519_MULTICODEC = b"\xed\x01"
_BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def load_multikey(multibase: str) -> PublicKey:
    """An Ed25519 key from a Multikey ``publicKeyMultibase`` (``z6Mk...``)."""
    if not isinstance(multibase, str) or not multibase.startswith("z") or len(multibase) > 128:
        raise SignatureError("bad_key", "not a base58btc multibase value")
    raw = _base58_decode(multibase[1:])
    if raw is None or not raw.startswith(_ED25519_MULTICODEC) or len(raw) != 34:
        raise SignatureError("bad_key", "not an Ed25519 Multikey")
    return ed25519.Ed25519PublicKey.from_public_bytes(raw[2:])


# Our own signing keys, parsed once. Measured with timeit (2-core dev box, 2048-bit RSA):
# parsing the PEM costs ~38 ms (OpenSSL checks the key; cryptography 45 and 50 alike), a
# signature ~0.26 ms: sign_cavage costs 41.0 ms a request parsing the PEM each time, 0.29 ms
# cached (sign_request: cavage 0.28 ms, rfc9421 0.32 ms). A bounded LRU keyed by the PEM's
# SHA-256, so that the cache keeps no PEM text; a rotated key simply ages out. Nothing here
# logs key material.
PRIVATE_KEY_CACHE_SIZE = 256
_PRIVATE_KEY_TYPES = (rsa.RSAPrivateKey, ed25519.Ed25519PrivateKey, ec.EllipticCurvePrivateKey)
_private_keys: OrderedDict[bytes, PrivateKey] = OrderedDict()
_private_keys_lock = threading.Lock()


def load_private_key(pem: str) -> PrivateKey:
    """Our own signing key: PKCS#8 or PKCS#1 PEM, RSA, Ed25519 or EC P-256, unencrypted.

    Cached (see ``PRIVATE_KEY_CACHE_SIZE``), so callers may call it per signature."""
    if not isinstance(pem, str):
        raise SignatureError("bad_key", "the private key is not a PEM text")
    data = pem.strip().encode("ascii", "replace")
    digest = hashlib.sha256(data).digest()
    with _private_keys_lock:
        key = _private_keys.get(digest)
        if key is not None:
            _private_keys.move_to_end(digest)
            return key
    key = _parse_private_key(data)  # outside the lock: a miss must not stall other signers
    with _private_keys_lock:
        _private_keys[digest] = key
        _private_keys.move_to_end(digest)
        while len(_private_keys) > PRIVATE_KEY_CACHE_SIZE:
            _private_keys.popitem(last=False)
    return key


def signing_key(key: str | PrivateKey) -> PrivateKey:
    """A private key given as PEM text (loaded through the cache) or already loaded."""
    if isinstance(key, str):
        return load_private_key(key)
    if not isinstance(key, _PRIVATE_KEY_TYPES):
        raise SignatureError("bad_key", "not a private key")
    return key


def _parse_private_key(data: bytes) -> PrivateKey:
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm, AttributeError) as exc:
        raise SignatureError("bad_key", "the private key is not a readable PEM key") from exc
    _checked(key.public_key())
    return key  # type: ignore[return-value]


def key_kind(key: PublicKey | PrivateKey) -> str:
    """``"rsa"``, ``"ed25519"`` or ``"ec-p256"``: what an algorithm must match."""
    if isinstance(key, rsa.RSAPublicKey | rsa.RSAPrivateKey):
        return "rsa"
    if isinstance(key, ed25519.Ed25519PublicKey | ed25519.Ed25519PrivateKey):
        return "ed25519"
    if isinstance(key, ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey) and isinstance(
        key.curve, ec.SECP256R1
    ):
        return "ec-p256"
    raise SignatureError("bad_key", f"unsupported key type {type(key).__name__}")


def _checked(key: Any) -> PublicKey:
    kind = key_kind(key)
    if kind == "rsa" and not MIN_RSA_BITS <= key.key_size <= MAX_RSA_BITS:
        raise SignatureError("bad_key", f"RSA key of {key.key_size} bits is out of range")
    return key


def _b64url(value: str) -> bytes:
    if not isinstance(value, str):
        raise TypeError("JWK members are strings")
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except binascii.Error as exc:
        raise ValueError("bad base64url") from exc


def _b64int(value: str) -> int:
    return int.from_bytes(_b64url(value), "big")


def _base58_decode(text: str) -> bytes | None:
    number = 0
    for char in text:
        digit = _BASE58.find(char)
        if digit < 0:
            return None
        number = number * 58 + digit
    body = number.to_bytes((number.bit_length() + 7) // 8, "big")
    leading_zeros = len(text) - len(text.lstrip("1"))
    return b"\x00" * leading_zeros + body
