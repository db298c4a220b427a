"""eddsa-jcs-2022 proofs (fedsx/proofs.py) against the W3C, FEP-8b32 and Hollo vectors.

The vectors and what each must give are in tests/fixtures/proofs/README.txt (copied with
PROVENANCE.txt). Both directions: our verifier accepts every MUST VERIFY proof, and our signer,
given the vector's secret key, unsigned document and `created`, writes its proofValue exactly.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from fedsx import proofs

FIXTURES = Path(__file__).parent / "fixtures" / "proofs"
SECRET = "z3u2en7t5LR2WtQH5PfFqMqwVHBeXouLzo6haApm8XHqvjxq"  # fep-8b32.feature's secret key
CREATED = "2023-02-24T23:36:38Z"


def load(path: str) -> dict:
    return json.loads((FIXTURES / path).read_text())


def fep_key(version: str) -> str:
    actor = load(f"fep-8b32/extracted/{version}/actor-alice.json")
    return actor["assertionMethod"][0]["publicKeyMultibase"]


def hollo_key() -> str:
    actor = load("hollo-wizard.casa/actor-hongminhee.json")
    (key,) = [k for k in actor["assertionMethod"] if k["id"].endswith("#ed25519-key")]
    return key["publicKeyMultibase"]


VALID_FEP = ["current", "2024-06-24", "2023-08-14"]
RSA_MULTIKEY = load("hollo-wizard.casa/actor-hongminhee.json")["assertionMethod"][0][
    "publicKeyMultibase"
]


# --- MUST VERIFY ------------------------------------------------------------------------------


@pytest.mark.parametrize("version", VALID_FEP)
def test_fep_8b32_vectors_verify(version):
    proofs.verify(load(f"fep-8b32/extracted/{version}/create-signed.json"), fep_key(version))


def test_w3c_vc_di_eddsa_vector_verifies():
    keypair = load("vc-di-eddsa/keyPair.json")
    proofs.verify(load("vc-di-eddsa/eddsa-jcs-2022/signedJCS.json"), keypair["publicKeyMultibase"])


def test_hollo_follow_from_a_live_server_verifies():
    proofs.verify(load("hollo-wizard.casa/follow-signed-assembled.json"), hollo_key())


# --- our signer reproduces the vectors byte for byte --------------------------------------------


@pytest.mark.parametrize("version", VALID_FEP)
def test_signing_the_fep_documents_reproduces_their_proofs(version):
    signed = load(f"fep-8b32/extracted/{version}/create-signed.json")
    unsigned = load(f"fep-8b32/extracted/{version}/create-unsigned.json")
    expected = signed["proof"]
    ours = proofs.sign(
        unsigned,
        proofs.decode_secret_key(SECRET),
        expected["verificationMethod"],
        created=expected["created"],
        embed_context="@context" in expected,
    )
    assert ours["proof"]["proofValue"] == expected["proofValue"]
    assert ours == signed


def test_signing_the_w3c_credential_reproduces_every_intermediate():
    keypair = load("vc-di-eddsa/keyPair.json")
    secret = keypair.get("secretKeyMultibase", keypair.get("privateKeyMultibase"))
    expected = load("vc-di-eddsa/eddsa-jcs-2022/signedJCS.json")
    ours = proofs.sign(
        load("vc-di-eddsa/unsigned.json"),
        proofs.decode_secret_key(secret),
        expected["proof"]["verificationMethod"],
        created=CREATED,
    )
    assert ours == expected
    config = load("vc-di-eddsa/eddsa-jcs-2022/proofConfigJCS.json")
    hash_data = proofs._hash_data(config, load("vc-di-eddsa/unsigned.json"))
    combined = (FIXTURES / "vc-di-eddsa/eddsa-jcs-2022/combinedHashJCS.txt").read_text().strip()
    assert hash_data.hex() == combined
    signature = (FIXTURES / "vc-di-eddsa/eddsa-jcs-2022/sigBTC58JCS.txt").read_text().strip()
    assert ours["proof"]["proofValue"] == signature


def test_the_secret_key_derives_the_published_public_key():
    secret = proofs.decode_secret_key(SECRET)
    assert proofs.encode_public_key(secret.public_key()) == fep_key("current")
    assert proofs.encode_secret_key(secret) == SECRET


def test_fep_521a_multikey_vector():
    # fep-521a.feature: "Given the Ed25519 public key as a hex string ..." -> this multibase.
    raw = bytes.fromhex("2e6fcce36701dc791488e0d0b1745cc1e33a4c1c9fcc41c63bd343dbbe0970e6")
    key = proofs.Ed25519PublicKey.from_public_bytes(raw)
    multibase = "z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK"
    assert proofs.encode_public_key(key) == multibase
    assert proofs.decode_public_key(multibase).public_bytes_raw() == raw


def test_a_fresh_key_signs_and_verifies_with_the_current_time():
    secret, public = proofs.generate_keypair()
    doc = {"@context": "https://www.w3.org/ns/activitystreams", "type": "Note", "content": "hi"}
    signed = proofs.sign(doc, proofs.decode_secret_key(secret), "https://a.example/u#ed25519-key")
    assert signed["proof"]["created"].endswith("Z")
    assert signed["proof"]["@context"] == doc["@context"]
    assert "proof" not in doc  # the caller's document is left alone
    proofs.verify(signed, public)
    proofs.verify(signed, proofs.decode_public_key(public))


# --- MUST REJECT, each with its code ----------------------------------------------------------


def test_the_pre_rename_cryptosuite_is_rejected():
    # 2023-07-15: the maths holds, but "jcs-eddsa-2022" is not the cryptosuite's name.
    with pytest.raises(proofs.ProofError) as err:
        proofs.verify(
            load("fep-8b32/extracted/2023-07-15/create-signed.json"), fep_key("2023-07-15")
        )
    assert err.value.code == "unknown_cryptosuite"


def _tampered(version: str) -> dict[str, tuple[dict, str]]:
    base = load(f"fep-8b32/extracted/{version}/create-signed.json")

    def variant(change) -> dict:
        doc = copy.deepcopy(base)
        change(doc)
        return doc

    cases = {
        "content changed": (
            variant(lambda d: d["object"].__setitem__("content", "bye")),
            "bad_signature",
        ),
        "created changed": (
            variant(lambda d: d["proof"].__setitem__("created", "2023-02-24T23:36:39Z")),
            "bad_signature",
        ),
        # Fedify: "rejects an expires option added after signing" (a future date: not expired).
        "expires added": (
            variant(lambda d: d["proof"].__setitem__("expires", "2999-01-01T00:00:00Z")),
            "bad_signature",
        ),
        "purpose changed": (
            variant(lambda d: d["proof"].__setitem__("proofPurpose", "authentication")),
            "wrong_proof_purpose",
        ),
        "type changed": (
            variant(lambda d: d["proof"].__setitem__("type", "Ed25519Signature2020")),
            "unknown_proof_type",
        ),
        "proofValue not multibase": (
            variant(lambda d: d["proof"].__setitem__("proofValue", "u" + "A" * 86)),
            "malformed_multibase",
        ),
        "proofValue not base58": (
            variant(lambda d: d["proof"].__setitem__("proofValue", "z0OIl")),
            "malformed_multibase",
        ),
        "proofValue too short": (
            variant(lambda d: d["proof"].__setitem__("proofValue", "z3sXax")),
            "malformed_multibase",
        ),
        "proof removed": (variant(lambda d: d.pop("proof")), "no_proof"),
        "proof a string": (variant(lambda d: d.__setitem__("proof", "z3sX")), "malformed_proof"),
    }
    if "@context" in base["proof"]:
        cases["context no longer starts with the proof's"] = (
            variant(lambda d: d.__setitem__("@context", list(reversed(d["@context"])))),
            "context_mismatch",
        )
    return cases


TAMPERED = [
    (version, name, *case) for version in VALID_FEP for name, case in _tampered(version).items()
]


@pytest.mark.parametrize(
    ("version", "name", "document", "code"),
    TAMPERED,
    ids=[f"{v}-{n}" for v, n, _, _ in TAMPERED],
)
def test_tampered_variants_are_rejected_with_their_code(version, name, document, code):
    with pytest.raises(proofs.ProofError) as err:
        proofs.verify(document, fep_key(version))
    assert err.value.code == code, name


def test_the_current_document_with_the_2024_proof_value_is_rejected():
    doc = load("fep-8b32/extracted/current/create-signed.json")
    doc["proof"]["proofValue"] = load("fep-8b32/extracted/2024-06-24/create-signed.json")["proof"][
        "proofValue"
    ]
    with pytest.raises(proofs.ProofError) as err:
        proofs.verify(doc, fep_key("current"))
    assert err.value.code == "bad_signature"


def test_hollo_created_truncated_to_milliseconds_is_rejected():
    # Strings are hashed as received: re-formatting nanoseconds breaks the proof.
    doc = load("hollo-wizard.casa/follow-signed-assembled.json")
    doc["proof"]["created"] = "2024-06-11T10:29:32.165Z"
    with pytest.raises(proofs.ProofError) as err:
        proofs.verify(doc, hollo_key())
    assert err.value.code == "bad_signature"


def test_an_expired_proof_is_rejected():
    secret, public = proofs.generate_keypair()
    signed = proofs.sign({"type": "Note"}, proofs.decode_secret_key(secret), "https://a.example/k")
    signed["proof"]["expires"] = "2000-01-01T00:00:00Z"
    with pytest.raises(proofs.ProofError) as err:
        proofs.verify(signed, public)
    assert err.value.code == "proof_expired"


def test_another_key_is_rejected():
    other = Ed25519PrivateKey.generate().public_key()
    with pytest.raises(proofs.ProofError) as err:
        proofs.verify(load("fep-8b32/extracted/current/create-signed.json"), other)
    assert err.value.code == "bad_signature"


@pytest.mark.parametrize(
    "multibase",
    [
        "",
        "6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2",  # no multibase prefix
        "z0OIl",  # not base58btc
        RSA_MULTIKEY,  # an RSA key (Hollo's #main-key)
        "z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ",  # one character short
        None,
    ],
)
def test_a_malformed_public_key_is_rejected(multibase):
    with pytest.raises(proofs.ProofError) as err:
        proofs.decode_public_key(multibase)
    assert err.value.code == "malformed_multibase"
    with pytest.raises(proofs.ProofError) as err:
        proofs.verify(load("fep-8b32/extracted/current/create-signed.json"), multibase)
    assert err.value.code == "malformed_multibase"


def test_an_ld_signature_added_after_the_proof_is_left_out():
    # FEP-8b32: with both present, "signature" is removed before the proof is verified.
    doc = load("fep-8b32/extracted/current/create-signed.json")
    doc["signature"] = {"type": "RsaSignature2017", "signatureValue": "AAAA"}
    proofs.verify(doc, fep_key("current"))


# --- anything a peer can send gives a ProofError, never another exception ------------------

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
_proof = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(["DataIntegrityProof", "x"]) | _json,
        "cryptosuite": st.sampled_from(["eddsa-jcs-2022", "jcs-eddsa-2022"]) | _json,
        "proofPurpose": st.sampled_from(["assertionMethod"]) | _json,
        "verificationMethod": st.text(max_size=30) | _json,
        "proofValue": st.sampled_from(["z", "z3sX", "z" + "1" * 90]) | st.text(max_size=90) | _json,
        "created": st.text(max_size=30) | _json,
        "expires": st.sampled_from(["2000-01-01T00:00:00Z", "nope"]) | _json,
        "@context": _json,
    },
)


@settings(max_examples=300, deadline=None)
@given(
    document=st.dictionaries(st.text(max_size=8), _json, max_size=5),
    proof=_proof | _json | st.lists(_proof, max_size=2),
    key=st.sampled_from([None, "", "z6Mk", fep_key("current")]) | st.text(max_size=50),
)
def test_any_input_gives_a_proof_error_or_verifies(document, proof, key):
    try:
        proofs.verify({**document, "proof": proof}, key)
    except proofs.ProofError as err:
        assert err.code and err.detail
