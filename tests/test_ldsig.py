"""The RsaSignature2017 verifier against every case of tests/fixtures/ld-signatures/README.txt
(MUST VERIFY / MUST FAIL), with the contexts bundled in the package and nothing fetched."""

import copy
import json
from pathlib import Path

import pytest

from fedsx import jsonld, ldsig
from fedsx.httpsig import load_public_key

FIXTURES = Path(__file__).resolve().parent / "fixtures"
LD = FIXTURES / "ld-signatures"
FORWARDING = FIXTURES / "forwarding"
MASTODON = FIXTURES / "activities" / "mastodon"


def load(path: Path) -> dict:
    return json.loads(path.read_text())


def key_of(path: Path):
    document = load(path)
    pem = document["publicKey"]
    pem = pem if isinstance(pem, str) else pem["publicKeyPem"]
    if "\n" not in pem.strip():  # activitypub.academy's PEM has spaces for newlines
        head, _, rest = pem.partition("----- ")
        body, _, tail = rest.partition(" -----END")
        pem = f"{head}-----\n{body.replace(' ', chr(10))}\n-----END{tail}"
    return load_public_key(pem)


ADMIN = LD / "pleroma-fixtures" / "admin@mastdon.example.org.json"
MUST_VERIFY = [
    (
        "activitypub.academy/create-note-signed.json",
        "activitypub.academy/actor-brauca_darradiul.json",
    ),
    ("activity-relay/create.json", "activity-relay/person.json"),
    (
        "pleroma-fixtures/mastodon-follow-activity.json",
        "pleroma-fixtures/admin@mastdon.example.org.json",
    ),
    (
        "pleroma-fixtures/mastodon-accept-activity.json",
        "pleroma-fixtures/admin@mastdon.example.org.json",
    ),
]
# Pleroma's copies of Mastodon captures, edited after they were signed (crosscheck-output.txt).
EDITED = [
    "announce.json",
    "block.json",
    "create-note-contentmap.json",
    "create-note-hashtag.json",
    "create-note-sensitive.json",
    "create-note-with-attachment.json",
    "create-note.json",
    "like.json",
    "reject-follow.json",
    "undo-announce.json",
    "undo-block.json",
    "undo-follow.json",
    "undo-like-compact-object.json",
    "undo-like.json",
]


@pytest.mark.parametrize(("signed", "key"), MUST_VERIFY)
def test_must_verify(signed, key):
    document = load(LD / signed)
    assert ldsig.creator(document) == document["signature"]["creator"]
    ldsig.verify(document, key_of(LD / key))


def test_peertube_bad_signature_must_fail():
    document = load(LD / "peertube" / "create-bad-signature.json")
    with pytest.raises(ldsig.LDSignatureError):
        ldsig.verify(document, key_of(LD / "peertube" / "public-key.json"))


@pytest.mark.parametrize("name", EDITED)
def test_edited_mastodon_captures_must_fail(name):
    with pytest.raises(ldsig.LDSignatureError):
        ldsig.verify(load(MASTODON / name), key_of(ADMIN))


def test_body_with_a_bad_digest_still_carries_a_valid_ld_signature():
    request = load(
        FIXTURES
        / "activities"
        / "signed-requests"
        / ("mastodon-2.5.0-create-peertube-fixture-bad-body.json")
    )
    body = request["body"] if isinstance(request["body"], dict) else json.loads(request["body"])
    ldsig.verify(body, key_of(LD / "peertube" / "public-key.json"))


RELAYED = LD / "activity-relay" / "create.json"
YUKIMOCHI = LD / "activity-relay" / "person.json"


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d["object"].__setitem__("content", "<p>changed</p>"),
        lambda d: d["signature"].__setitem__("created", "2018-12-24T07:39:37Z"),
        lambda d: d.__setitem__("id", d["id"] + "x"),
        lambda d: d["signature"].__setitem__("signatureValue", "!"),
        lambda d: d["signature"].__setitem__("signatureValue", "AQIDBA=="),
    ],
    ids=["content", "created", "id", "not-base64", "four-bytes"],
)
def test_derived_changes_must_fail(change):
    document = load(RELAYED)
    change(document)
    with pytest.raises(ldsig.LDSignatureError):
        ldsig.verify(document, key_of(YUKIMOCHI))


def test_re_serialised_document_still_verifies():
    document = json.loads(json.dumps(load(RELAYED), sort_keys=True, indent=3))
    ldsig.verify(document, key_of(YUKIMOCHI))


def test_another_key_does_not_verify():
    with pytest.raises(ldsig.LDSignatureError):
        ldsig.verify(load(RELAYED), key_of(ADMIN))


def test_forged_ld_payload_verifies_but_signs_other_data():
    """Mastodon's "fabricated status": the signature is genuine, and what it covers is bob's
    "hello world", not the "puck was here" the compact keys claim."""
    document = load(FORWARDING / "mastodon-forged-ld" / "create-forged.json")
    bob = load_public_key((FORWARDING / "mastodon-forged-ld" / "bob-public.pem").read_text())
    ldsig.verify(document, bob)
    signed = ldsig.signed_data(document)
    # Compacted against its own context, whose null wiped the AS terms: no "id" at all.
    assert "id" not in signed
    assert signed["@id"] == "https://example.com/users/bob/statuses/107928807471117876/activity"
    assert "<p>hello world</p>" in json.dumps(signed)
    assert "puck was here" not in json.dumps(signed)
    assert "fake-status" not in json.dumps({k: v for k, v in signed.items() if k != "signature"})


def test_an_unknown_context_is_unavailable_not_an_error():
    document = copy.deepcopy(load(RELAYED))
    document["@context"] = [*document["@context"], "https://unknown.example/context.jsonld"]
    with pytest.raises(jsonld.JsonLdUnavailable):
        ldsig.verify(document, key_of(YUKIMOCHI))


def test_the_loader_never_fetches():
    with pytest.raises(jsonld.JsonLdUnavailable):
        jsonld.load_document("https://www.w3.org/ns/odrl.jsonld")
    assert jsonld.load_document("https://w3id.org/security/v1")["document"]["@context"]


def test_many_blank_nodes_are_refused_before_canonicalisation():
    document = {
        "@context": "https://www.w3.org/ns/activitystreams",
        "type": "Note",
        "tag": [{"type": "Mention", "name": str(n)} for n in range(jsonld.MAX_BLANK_NODES + 1)],
    }
    with pytest.raises(jsonld.JsonLdUnavailable):
        jsonld.canonical_nquads(document)


ACADEMY = LD / "activitypub.academy" / "create-note-signed.json"
ACADEMY_ACTOR = LD / "activitypub.academy" / "actor-brauca_darradiul.json"


def test_a_node_with_a_relative_id_is_refused():
    """RDF drops a node with a relative IRI, so it is not signed; compaction would keep it."""
    document = load(ACADEMY)
    document["tag"] = [{"id": "x", "type": "Mention", "href": "https://here.example/actors/a"}]
    with pytest.raises(jsonld.JsonLdUnavailable, match="absolute IRI"):
        ldsig.verify(document, key_of(ACADEMY_ACTOR))


def test_undefined_terms_are_not_in_the_signed_data():
    document = load(ACADEMY)
    document["object"]["unsignedTerm"] = "added by a forwarder"
    ldsig.verify(document, key_of(ACADEMY_ACTOR))  # the RDF has no such term
    assert "unsignedTerm" not in json.dumps(ldsig.signed_data(document))


def blank_node_clique(size: int) -> list[dict]:
    return [
        {
            "id": f"_:a{n}",
            "type": "Mention",
            "tag": [{"id": f"_:a{m}"} for m in range(size) if m != n],
        }
        for n in range(size)
    ]


def test_explicit_blank_node_ids_are_refused():
    document = load(RELAYED)
    document["object"]["tag"] = blank_node_clique(8)
    with pytest.raises(jsonld.JsonLdUnavailable, match="absolute IRI"):
        ldsig.verify(document, key_of(YUKIMOCHI))


def test_canonicalisation_work_is_bounded():
    """Eight linked blank nodes cost minutes of URDNA2015 unbounded (8! permutations, each
    recursing); the budget stops it after MAX_CANONICALISATION_STEPS identifier checks."""
    document = {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": "https://a.example/notes/1",
        "type": "Note",
        "tag": blank_node_clique(8),
    }
    nquads = jsonld.jsonld.to_rdf(
        document, {"documentLoader": jsonld.load_document, "format": jsonld.NQUADS}
    )
    with pytest.raises(jsonld.JsonLdUnavailable, match="too long"):
        jsonld._canonicalise(nquads, None)
