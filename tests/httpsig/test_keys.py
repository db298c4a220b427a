"""Loading peers' keys: PEM (SPKI and PKCS#1), JWK, Multikey; unfit keys are refused."""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519, rsa

from fedsx.httpsig import SignatureError, load_jwk, load_multikey, load_public_key

from .vectors import CAVAGE, MASTODON, RFC9421, text


def pem(key) -> str:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        (RFC9421 / "test-key-rsa.pub.pem", rsa.RSAPublicKey),  # PKCS#1 "RSA PUBLIC KEY"
        (RFC9421 / "test-key-rsa-pss.pub.pem", rsa.RSAPublicKey),
        (RFC9421 / "test-key-ed25519.pub.pem", ed25519.Ed25519PublicKey),
        (RFC9421 / "test-key-ecc-p256.pub.pem", ec.EllipticCurvePublicKey),
        (CAVAGE / "test-public.pem", rsa.RSAPublicKey),  # 1024-bit
        (MASTODON / "bob-public.pem", rsa.RSAPublicKey),
    ],
)
def test_pem(path, kind):
    assert isinstance(load_public_key(text(path)), kind)


def test_pem_is_cached():
    source = text(MASTODON / "bob-public.pem")
    assert load_public_key(source) is load_public_key(source)


@pytest.mark.parametrize(
    "name", ["test-key-rsa", "test-key-rsa-pss", "test-key-ed25519", "test-key-ecc-p256"]
)
def test_jwk_matches_pem(name):
    jwk = json.loads(text(RFC9421 / f"{name}.jwk.json"))
    assert pem(load_jwk(jwk)) == pem(load_public_key(text(RFC9421 / f"{name}.pub.pem")))


def test_multikey():
    key = ed25519.Ed25519PrivateKey.generate().public_key()
    raw = b"\xed\x01" + key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    number, alphabet, digits = (
        int.from_bytes(raw, "big"),
        "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz",
        "",
    )
    while number:
        number, rest = divmod(number, 58)
        digits = alphabet[rest] + digits
    assert digits.startswith("6Mk")
    assert pem(load_multikey("z" + digits)) == pem(key)


def rsa_of_bits(bits: int) -> str:
    # Public numbers only: the modulus need not factor for the size check to apply.
    return pem(rsa.RSAPublicNumbers(65537, (1 << (bits - 1)) | 1).public_key())


@pytest.mark.parametrize(
    "value",
    [
        "",
        "not a key",
        "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
        text(RFC9421 / "test-key-rsa.priv.pem"),  # a private key is not a public key
        text(RFC9421 / "test-shared-secret.b64"),
        "x" * 100_000,
        "-----BEGIN PUBLIC KEY-----\né\n-----END PUBLIC KEY-----\n",
        None,
        b"bytes",
        {"kty": "RSA"},
    ],
)
def test_unreadable_pem(value):
    with pytest.raises(SignatureError) as info:
        load_public_key(value)
    assert info.value.code == "bad_key"


def test_unfit_keys():
    with pytest.raises(SignatureError, match="bad_key"):
        load_public_key(rsa_of_bits(512))
    with pytest.raises(SignatureError, match="bad_key"):
        load_public_key(rsa_of_bits(16384))
    with pytest.raises(SignatureError, match="bad_key"):
        load_public_key(pem(ec.generate_private_key(ec.SECP384R1()).public_key()))
    with pytest.raises(SignatureError, match="bad_key"):
        load_public_key(pem(dsa.generate_private_key(2048).public_key()))


@pytest.mark.parametrize(
    "jwk",
    [
        {},
        {"kty": "RSA"},
        {"kty": "RSA", "n": 5, "e": "AQAB"},
        {"kty": "oct", "k": "AAAA"},
        {"kty": "OKP", "crv": "Ed25519", "x": "AAAA"},
    ],
)
def test_bad_jwk(jwk):
    with pytest.raises(SignatureError, match="bad_key"):
        load_jwk(jwk)


@pytest.mark.parametrize("value", ["", "z", "zzzz0OIl", "m6Mk", "z" + "1" * 200, 5])
def test_bad_multikey(value):
    with pytest.raises(SignatureError, match="bad_key"):
        load_multikey(value)
