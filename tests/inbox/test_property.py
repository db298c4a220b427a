"""Random bodies and headers never give a 500 and never store a row."""

import itertools
import json
import socket
from base64 import b64encode

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from fedsx import proofs
from fedsx.keys import key_fetch_budget, origin_fetch_budget, store_actor
from fedsx.models import Activity, InboxEntry

from .helpers import FIXTURES, deliver, keypair, ld_sign, meta, remote_sender, stored_counts

KEY_IDS = [
    "https://remote.example/users/bob#main-key",
    "http://127.0.0.1/users/x#k",
    "http://[::1]/k",
    "not a url",
    "",
    "https://remote.example/users/bob",
]

header_value = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=200)
signature_header = st.one_of(
    header_value,
    st.builds(
        lambda key_id, alg, headers, sig: (
            f'keyId="{key_id}",algorithm="{alg}",headers="{headers}",signature="{sig}"'
        ),
        st.sampled_from(KEY_IDS),
        st.sampled_from(["rsa-sha256", "hs2019", "ed25519", "x"]),
        st.sampled_from(["(request-target) host date digest", "date", "", "host"]),
        st.text(alphabet="ABCDEFabcdef0123456789+/=", max_size=80),
    ),
)
json_body = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=10), c, max_size=4),
    max_leaves=20,
).map(lambda v: json.dumps(v).encode())

requests_ = st.fixed_dictionaries(
    {
        "body": st.one_of(st.binary(max_size=400), json_body),
        "content_type": st.sampled_from(
            [
                "application/activity+json",
                "application/json",
                "text/plain",
                "",
                "application/ld+json; x",
            ]
        ),
        "headers": st.dictionaries(
            st.sampled_from(
                [
                    "Signature",
                    "Digest",
                    "Date",
                    "Signature-Input",
                    "Content-Digest",
                    "Authorization",
                ]
            ),
            header_value,
            max_size=5,
        ),
        "signature": st.one_of(st.none(), signature_header),
        "path": st.sampled_from(["/actors/demo/inbox", "/inbox", "/actors/nobody/inbox"]),
    }
)


@pytest.mark.django_db
@settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(request=requests_)
def test_random_requests_never_500_and_never_store(client, demo, request):
    remote_sender("https://remote.example/users/bob")
    headers = dict(request["headers"])
    if request["signature"] is not None:
        headers["Signature"] = request["signature"]
    response = client.generic(
        "POST",
        request["path"],
        request["body"],
        content_type=request["content_type"],
        **meta(headers),
    )
    assert response.status_code in {400, 401, 403, 404, 413, 415}, response.content
    assert response["Content-Type"] == "application/json"
    assert Activity.objects.count() == 0
    assert InboxEntry.objects.count() == 0


@pytest.fixture
def offline(monkeypatch):
    """Every name resolves to loopback, which the SSRF guard refuses: an origin fetch the
    forwarded path tries never leaves the machine."""
    real = socket.getaddrinfo
    monkeypatch.setattr(
        socket, "getaddrinfo", lambda host, port, *a, **k: real("127.0.0.1", port, *a, **k)
    )


# Forwarded activities: HTTP-signed by bob, whose key is known, for another actor whose key
# is known too, carrying whatever `signature` (LD) and `proof` members: the forwarded path
# (JSON-LD, canonicalisation, the origin fetch) answers a 4xx or accepts, never a 5xx.
RELAYED = json.loads((FIXTURES / "ld-signatures" / "activity-relay" / "create.json").read_text())
PERSON = json.loads((FIXTURES / "ld-signatures" / "activity-relay" / "person.json").read_text())
CONTEXTS = [
    "https://www.w3.org/ns/activitystreams",
    "https://w3id.org/security/v1",
    "https://w3id.org/identity/v1",
    "https://w3id.org/security/data-integrity/v2",
    "https://unknown.example/ns.jsonld",
    "http://127.0.0.1/ctx",
    None,
    {"@vocab": "http://x.example/#"},
    {"id": "@id", "type": "@type", "object": {"@id": "as:object", "@type": "@id"}},
    {"@context": {"@context": "https://www.w3.org/ns/activitystreams"}},
    {"@import": "https://w3id.org/security/v1"},
    {"@version": 1.1, "@protected": True, "actor": "@id"},
]
scalar = st.none() | st.booleans() | st.integers() | st.text(max_size=30)
member = st.recursive(
    scalar,
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=12), c, max_size=4),
    max_leaves=10,
)
ld_signature = st.one_of(
    member,
    st.fixed_dictionaries(
        {
            "type": st.sampled_from(["RsaSignature2017", "x"]),
            "creator": st.sampled_from(
                [PERSON["publicKey"]["id"], "https://remote.example/users/bob#main-key", "", 1]
            ),
            "created": st.sampled_from([RELAYED["signature"]["created"], "x", None]),
            "signatureValue": st.one_of(
                st.just(RELAYED["signature"]["signatureValue"]), st.text(max_size=40)
            ),
        },
        optional={"nonce": member, "@context": st.sampled_from(CONTEXTS)},
    ),
)
proof = st.one_of(
    member,
    st.fixed_dictionaries(
        {
            "type": st.sampled_from(["DataIntegrityProof", "x"]),
            "cryptosuite": st.sampled_from(["eddsa-jcs-2022", "eddsa-rdfc-2022", ""]),
            "verificationMethod": st.sampled_from([PERSON["id"] + "#ed25519-key", "", "x"]),
            "proofPurpose": st.sampled_from(["assertionMethod", "x"]),
            "proofValue": st.text(max_size=40),
        },
        optional={"@context": st.sampled_from(CONTEXTS), "created": member},
    ),
)
forwarded = st.fixed_dictionaries(
    {
        "context": st.one_of(
            st.just(RELAYED["@context"]),
            st.sampled_from(CONTEXTS),
            st.lists(st.sampled_from(CONTEXTS), max_size=4),
        ),
        "signature": st.one_of(st.just(RELAYED["signature"]), ld_signature, st.none()),
        "proof": st.one_of(st.none(), proof, st.lists(proof, max_size=2)),
        "type": st.sampled_from(["Create", "Update", "Announce", "Follow", "Delete"]),
        "object": st.one_of(st.just(RELAYED["object"]), member),
        "extra": st.dictionaries(st.text(max_size=12), member, max_size=3),
    }
)


@pytest.mark.django_db
@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=forwarded)
def test_forwarded_bodies_with_signatures_and_proofs_never_5xx(client, demo, offline, case):
    # Each example is a fresh sender: the per-host key-fetch and origin-fetch budgets (a
    # rightful 503 once spent) would otherwise carry over from the examples before it.
    key_fetch_budget.clear()
    origin_fetch_budget.clear()
    bob = remote_sender("https://remote.example/users/bob")
    store_actor(
        PERSON["id"], PERSON["publicKey"]["id"], PERSON["publicKey"]["publicKeyPem"], PERSON
    )
    activity = {**case["extra"], **RELAYED, "type": case["type"], "object": case["object"]}
    for name in ("context", "signature", "proof"):
        key = "@context" if name == "context" else name
        if case[name] is None:
            activity.pop(key, None)
        else:
            activity[key] = case[name]
    before = stored_counts()
    response = deliver(client, "/actors/demo/inbox", activity, bob)
    assert response.status_code in {202, 400, 401, 403}, response.content
    if response.status_code != 202:
        assert stored_counts() == before


# Forwarded activities with a VALID Object Integrity Proof by their actor (a test Ed25519
# key the actor's stored document lists), then left alone or changed after signing: the
# accepting branch is fuzzed too. Accepted (202, the forwarder recorded) only unchanged.
DAVE = "https://remote.example/users/dave"
DAVE_SECRET, DAVE_PUBLIC = proofs.generate_keypair()
DAVE_METHOD = f"{DAVE}#ed25519-key"
DAVE_KEY_ID = f"{DAVE}#main-key"
DAVE_DOCUMENT = {
    "@context": ["https://www.w3.org/ns/activitystreams", "https://w3id.org/security/multikey/v1"],
    "id": DAVE,
    "type": "Person",
    "inbox": f"{DAVE}/inbox",
    "assertionMethod": [
        {
            "id": DAVE_METHOD,
            "type": "Multikey",
            "controller": DAVE,
            "publicKeyMultibase": DAVE_PUBLIC,
        }
    ],
}
_serial = itertools.count()  # each example's own ids: the database is kept between examples
text = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=40
)
json_value = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | text,
    lambda c: st.lists(c, max_size=3) | st.dictionaries(text, c, max_size=3),
    max_leaves=8,
)
MUTATIONS = ["none", "member", "added", "proof_moved", "cryptosuite", "method", "proof_value"]
signed_case = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["Create", "Update", "Announce", "Like", "Follow", "Delete"]),
        "content": text,
        "extra": st.dictionaries(
            st.sampled_from(["summary", "name", "sensitive", "tag", "url", "x:custom"]),
            json_value,
            max_size=3,
        ),
        "mutation": st.sampled_from(MUTATIONS),
        # An RsaSignature2017 (LD) instead of a proof; without the extra members, which
        # JSON-LD may not define (so not sign), making the signature "absent" for them.
        "ld": st.booleans(),
    }
)


def signed_activity(case: dict) -> dict:
    n = next(_serial)
    extra = {} if case["ld"] else case["extra"]
    activity = {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": f"{DAVE}/statuses/{n}/activity",
        "type": case["type"],
        "actor": DAVE,
        "to": ["http://testserver/actors/demo"],
        "object": {
            "id": f"{DAVE}/statuses/{n}",
            "type": "Note",
            "attributedTo": DAVE,
            "content": case["content"],
            **extra,
        },
    }
    if case["ld"]:
        return ld_sign(activity, DAVE_KEY_ID, keypair("dave")[0])
    return proofs.sign(activity, proofs.decode_secret_key(DAVE_SECRET), DAVE_METHOD)


def mutated(activity: dict, mutation: str) -> dict:
    """The signed activity changed after signing as ``mutation`` says (its proof, or its
    LD signature: the same kinds of change)."""
    changed = json.loads(json.dumps(activity))
    if "signature" in changed:
        return _ld_mutated(changed, mutation)
    proof = changed["proof"]
    if mutation == "member":
        changed["object"]["content"] = changed["object"]["content"] + " (edited)"
    elif mutation == "added":
        changed["cc"] = ["https://www.w3.org/ns/activitystreams#Public"]
    elif mutation == "proof_moved":
        changed["object"]["proof"] = changed.pop("proof")
    elif mutation == "cryptosuite":
        proof["cryptosuite"] = "eddsa-rdfc-2022"
    elif mutation == "method":
        proof["verificationMethod"] = "https://remote.example/users/bob#ed25519-key"
    elif mutation == "proof_value":
        proof["proofValue"] = proof["proofValue"][:-2] + (
            "11" if proof["proofValue"][-2:] != "11" else "22"
        )
    return changed


def _ld_mutated(changed: dict, mutation: str) -> dict:
    signature = changed["signature"]
    if mutation == "member":
        changed["object"]["content"] = changed["object"]["content"] + " (edited)"
    elif mutation == "added":
        changed["cc"] = ["https://www.w3.org/ns/activitystreams#Public"]
    elif mutation == "proof_moved":
        changed["object"]["signature"] = changed.pop("signature")
    elif mutation == "cryptosuite":
        signature["type"] = "RsaSignature2018"
    elif mutation == "method":
        signature["creator"] = "https://remote.example/users/bob#main-key"
    elif mutation == "proof_value":
        signature["signatureValue"] = b64encode(bytes(256)).decode()
    return changed


@pytest.mark.django_db
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=signed_case)
def test_forwarded_activities_with_valid_proofs_accepted_only_unchanged(
    client, demo, offline, case
):
    key_fetch_budget.clear()
    origin_fetch_budget.clear()
    bob = remote_sender("https://remote.example/users/bob")
    store_actor(DAVE, DAVE_KEY_ID, keypair("dave")[1], DAVE_DOCUMENT)
    activity = mutated(signed_activity(case), case["mutation"])
    before = stored_counts()
    response = deliver(client, "/actors/demo/inbox", activity, bob)
    event(f"{'ld' if case['ld'] else 'proof'} {case['mutation']}: {response.status_code}")
    if case["mutation"] == "none":
        assert response.status_code == 202, response.content
        stored = Activity.objects.get(ap_id=activity["id"], actor=DAVE)
        if case["ld"]:  # what the signature covers: here, all of it
            assert stored.payload["object"]["content"] == case["content"]
        else:
            assert stored.payload == activity
        assert stored.forwarded_by == bob.ap_id
        assert InboxEntry.objects.get(activity=stored).activity.forwarded_by == bob.ap_id
        assert stored_counts() == (before[0] + 1, before[1] + 1)
    else:
        assert 400 <= response.status_code < 500, response.content
        assert stored_counts() == before
