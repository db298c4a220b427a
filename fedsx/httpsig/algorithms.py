"""Signature algorithms by the names each scheme uses, and the choice of one from a key."""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from .errors import SignatureError
from .keys import PrivateKey, PublicKey, key_kind

# Longest signature worth handing to the crypto library (an 8192-bit RSA one is 1 KiB).
MAX_SIGNATURE_BYTES = 1024


@dataclass(frozen=True)
class Algorithm:
    """One way of signing bytes: the key kind it needs and how it pads/hashes/encodes."""

    name: str
    kind: str  # key_kind() of the keys it works with
    scheme: str  # "pkcs1v15" | "pss" | "ed25519" | "ecdsa-der" | "ecdsa-raw"
    hash: type[hashes.HashAlgorithm] | None = None

    def verify(self, key: PublicKey, signature: bytes, data: bytes) -> bool:
        if key_kind(key) != self.kind:
            raise SignatureError(
                "bad_signature", f"algorithm {self.name} cannot be used with a {key_kind(key)} key"
            )
        if not signature or len(signature) > MAX_SIGNATURE_BYTES:
            return False
        try:
            self._verify(key, signature, data)
        except (InvalidSignature, ValueError):
            return False
        return True

    def sign(self, key: PrivateKey, data: bytes) -> bytes:
        if key_kind(key) != self.kind:
            raise SignatureError("bad_key", f"{self.name} needs a {self.kind} key")
        if self.scheme == "pkcs1v15":
            return key.sign(data, padding.PKCS1v15(), self.hash())  # type: ignore[call-arg,union-attr]
        if self.scheme == "pss":
            pss = padding.PSS(padding.MGF1(self.hash()), self.hash.digest_size)  # type: ignore[misc,union-attr]
            return key.sign(data, pss, self.hash())  # type: ignore[call-arg,union-attr]
        if self.scheme == "ed25519":
            return key.sign(data)  # type: ignore[call-arg]
        der = key.sign(data, ec.ECDSA(self.hash()))  # type: ignore[call-arg,arg-type,misc]
        if self.scheme == "ecdsa-der":
            return der
        r, s = decode_dss_signature(der)
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")

    def _verify(self, key, signature: bytes, data: bytes) -> None:
        if self.scheme == "pkcs1v15":
            key.verify(signature, data, padding.PKCS1v15(), self.hash())
        elif self.scheme == "pss":
            # Any salt length: RFC 9421 says 64 bytes, but a shorter one is no weaker to accept.
            pss = padding.PSS(padding.MGF1(self.hash()), padding.PSS.AUTO)
            key.verify(signature, data, pss, self.hash())
        elif self.scheme == "ed25519":
            key.verify(signature, data)
        elif self.scheme == "ecdsa-der":
            key.verify(signature, data, ec.ECDSA(self.hash()))
        else:  # RFC 9421 sends r || s, 32 bytes each
            if len(signature) != 64:
                raise InvalidSignature
            r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
            key.verify(encode_dss_signature(r, s), data, ec.ECDSA(self.hash()))


RSA_V1_5_SHA256 = Algorithm("rsa-v1_5-sha256", "rsa", "pkcs1v15", hashes.SHA256)
RSA_V1_5_SHA512 = Algorithm("rsa-sha512", "rsa", "pkcs1v15", hashes.SHA512)
RSA_PSS_SHA512 = Algorithm("rsa-pss-sha512", "rsa", "pss", hashes.SHA512)
ED25519 = Algorithm("ed25519", "ed25519", "ed25519")
ECDSA_P256_SHA256_RAW = Algorithm("ecdsa-p256-sha256", "ec-p256", "ecdsa-raw", hashes.SHA256)
ECDSA_P256_SHA256_DER = Algorithm("ecdsa-sha256", "ec-p256", "ecdsa-der", hashes.SHA256)

# RFC 9421 section 6.2 names.
MESSAGE_ALGORITHMS = {
    a.name: a for a in (RSA_V1_5_SHA256, RSA_PSS_SHA512, ED25519, ECDSA_P256_SHA256_RAW)
}
# draft-cavage names (section 2.1.3 and the older registry that servers still send).
CAVAGE_ALGORITHMS = {
    "rsa-sha256": RSA_V1_5_SHA256,
    "rsa-sha512": RSA_V1_5_SHA512,
    "ecdsa-sha256": ECDSA_P256_SHA256_DER,
    "ed25519": ED25519,
}
# hs2019 (or no algorithm) means "the key decides"; for RSA the fediverse means
# RSASSA-PKCS1-v1_5 with SHA-256, which is what Mastodon, Pleroma and GoToSocial send.
CAVAGE_BY_KEY = {"rsa": RSA_V1_5_SHA256, "ed25519": ED25519, "ec-p256": ECDSA_P256_SHA256_DER}
# RFC 9421 without alg: an RSA key may sign either way, so both are tried.
MESSAGE_BY_KEY = {
    "rsa": (RSA_V1_5_SHA256, RSA_PSS_SHA512),
    "ed25519": (ED25519,),
    "ec-p256": (ECDSA_P256_SHA256_RAW,),
}


def for_cavage(name: str | None, key: PublicKey | PrivateKey) -> Algorithm:
    if name is None or name.lower() == "hs2019":
        return CAVAGE_BY_KEY[key_kind(key)]
    algorithm = CAVAGE_ALGORITHMS.get(name.lower())
    if algorithm is None:
        raise SignatureError("unsupported_algorithm", f"algorithm {name[:40]!r} is not supported")
    return algorithm


def for_message(name: str | None, key: PublicKey | PrivateKey) -> tuple[Algorithm, ...]:
    if name is None:
        return MESSAGE_BY_KEY[key_kind(key)]
    algorithm = MESSAGE_ALGORITHMS.get(name)
    if algorithm is None:
        raise SignatureError("unsupported_algorithm", f"algorithm {name[:40]!r} is not supported")
    return (algorithm,)
