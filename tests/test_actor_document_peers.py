"""Our actor document against what peers' parsers require of one, field by field.

The requirements are data below, each citing the file it comes from (read from the upstream
repositories; the commit is given once per source). A requirement names a field, what its
value must be, and whether the field may be absent. Checked on the served document of a user
with an icon, on the instance actor, and (for what a key fetch needs) on the minimal form
authorized fetch answers with.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import pytest
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from fedsx import outbox, proofs
from fedsx.actors import create_local_actor

AP = "application/activity+json"
AS = "https://www.w3.org/ns/activitystreams"
pytestmark = pytest.mark.django_db

# mastodon/mastodon, app/services/activitypub/ (fetch_remote_actor_service.rb @ a184099a,
# process_account_service.rb @ c93180d2, fetch_remote_key_service.rb @ 1cf34a28).
MASTODON_ACTOR = "mastodon: app/services/activitypub/fetch_remote_actor_service.rb"
MASTODON_ACCOUNT = "mastodon: app/services/activitypub/process_account_service.rb"
MASTODON_KEY = "mastodon: app/services/activitypub/fetch_remote_key_service.rb"
# superseriousbusiness/gotosocial, internal/ap/extract.go @ 505128fb (the Extract* functions
# typeutils uses to build an account from an Accountable).
GTS = "gotosocial: internal/ap/extract.go"


def is_uri(value: Any) -> bool:
    parts = urlsplit(value) if isinstance(value, str) else None
    return bool(parts and parts.scheme in {"http", "https"} and parts.netloc)


def nonempty_string(value: Any) -> bool:
    return isinstance(value, str) and value != ""


def same_host_as_id(doc: dict) -> Callable[[Any], bool]:
    return lambda value: is_uri(value) and urlsplit(value).netloc == urlsplit(doc["id"]).netloc


def rsa_pem(value: Any) -> bool:
    # GoToSocial decodes the PEM block ("PUBLIC KEY": PKIX) and wants an RSA key.
    if not isinstance(value, str) or "-----BEGIN PUBLIC KEY-----" not in value:
        return False
    return isinstance(load_pem_public_key(value.encode()), RSAPublicKey)


def xsd_datetime(value: Any) -> bool:
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).tzinfo is not None
    except (AttributeError, ValueError):
        return False


def context_has_activitystreams(value: Any) -> bool:
    # JsonLdHelper#supported_context?: the AS namespace, alone or in an array.
    return value == AS or (isinstance(value, list) and AS in value)


@dataclass(frozen=True)
class Requirement:
    source: str
    field: str  # a dotted path into the document
    check: Callable[[dict], Callable[[Any], bool]]  # document -> value -> ok
    what: str
    optional: bool = False  # may be absent (checked when present)


def _publickey_owner(doc):
    return lambda key: isinstance(key, dict) and key.get("owner") == doc["id"]


def _publickey_id_is_the_actors(doc):
    # confirmed_owner?: the owner's publicKey id is the key id fetched; with a fragment key id,
    # the document fetched for the key is the actor itself.
    return lambda key: key.get("id", "").split("#")[0] == doc["id"] and "#" in key["id"]


REQUIREMENTS = [
    Requirement(MASTODON_ACTOR, "@context", lambda d: context_has_activitystreams, "AS context"),
    Requirement(
        MASTODON_ACTOR,
        "type",
        lambda d: lambda t: t in {"Application", "Group", "Organization", "Person", "Service"},
        "one of SUPPORTED_TYPES",
    ),
    Requirement(MASTODON_ACTOR, "preferredUsername", lambda d: nonempty_string, "present"),
    Requirement(MASTODON_ACCOUNT, "id", lambda d: is_uri, "http(s) URI (unsupported_uri_scheme?)"),
    Requirement(MASTODON_ACCOUNT, "inbox", lambda d: is_uri, "not blank (else not processed)"),
    Requirement(MASTODON_ACCOUNT, "outbox", lambda d: is_uri, "a URI", optional=True),
    Requirement(MASTODON_ACCOUNT, "followers", lambda d: is_uri, "a URI", optional=True),
    Requirement(
        MASTODON_ACCOUNT, "endpoints.sharedInbox", lambda d: is_uri, "a URI", optional=True
    ),
    Requirement(MASTODON_ACCOUNT, "url", same_host_as_id, "same host as id (mismatching_origin?)"),
    Requirement(
        MASTODON_ACCOUNT, "name", lambda d: lambda v: isinstance(v, str), "string", optional=True
    ),
    Requirement(
        MASTODON_ACCOUNT,
        "summary",
        lambda d: lambda v: isinstance(v, str),
        "string",
        optional=True,
    ),
    Requirement(
        MASTODON_ACCOUNT,
        "manuallyApprovesFollowers",
        lambda d: lambda v: isinstance(v, bool),
        "boolean (account.locked)",
    ),
    Requirement(
        MASTODON_ACCOUNT,
        "icon.url",
        lambda d: is_uri,
        "icon is a Hash with url (image_url)",
        optional=True,
    ),
    Requirement(MASTODON_ACCOUNT, "publicKey.publicKeyPem", lambda d: rsa_pem, "a Hash's PEM"),
    Requirement(MASTODON_KEY, "publicKey", _publickey_owner, "owner is the actor"),
    Requirement(MASTODON_KEY, "publicKey", _publickey_id_is_the_actors, "key id in the actor"),
    Requirement(GTS, "preferredUsername", lambda d: nonempty_string, "ExtractPreferredUsername"),
    Requirement(GTS, "name", lambda d: nonempty_string, "ExtractName", optional=True),
    Requirement(GTS, "published", lambda d: xsd_datetime, "ExtractPublished", optional=True),
    Requirement(
        GTS,
        "icon",
        lambda d: lambda v: isinstance(v, dict) and v.get("type") == "Image" and is_uri(v["url"]),
        "ExtractIconURL: an Image with a url",
        optional=True,
    ),
    Requirement(
        GTS,
        "discoverable",
        lambda d: lambda v: isinstance(v, bool),
        "ExtractDiscoverable",
        optional=True,
    ),
    Requirement(GTS, "url", lambda d: is_uri, "ExtractURL: an IRI", optional=True),
    Requirement(GTS, "publicKey.id", lambda d: is_uri, "ExtractPublicKeyForOwner: id"),
    Requirement(GTS, "publicKey", _publickey_owner, "ExtractPublicKeyForOwner: owner"),
    Requirement(GTS, "publicKey.publicKeyPem", lambda d: rsa_pem, "ExtractPublicKeyForOwner"),
]

# What a peer needs from the minimal form to fetch a key and reach the inbox.
KEY_FETCH_FIELDS = {"@context", "type", "id", "preferredUsername", "inbox", "publicKey"}

_MISSING = object()


def lookup(doc: dict, path: str) -> Any:
    value: Any = doc
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return _MISSING
        value = value[part]
    return value


def violations(doc: dict, requirements=REQUIREMENTS) -> list[str]:
    out = []
    for req in requirements:
        value = lookup(doc, req.field)
        if value is _MISSING:
            if not req.optional:
                out.append(f"{req.source}: {req.field} missing ({req.what})")
        elif not req.check(doc)(value):
            out.append(f"{req.source}: {req.field}={value!r} fails: {req.what}")
    return out


def served(client, path: str) -> dict:
    response = client.get(path, HTTP_ACCEPT=AP)
    assert response.status_code == 200, response.content
    return json.loads(response.content)


@pytest.fixture
def pictured(db):
    return create_local_actor(
        "pictured",
        name="Pic Tured",
        icon_url="https://cdn.example/avatars/p.png",
        icon_media_type="image/png",
    )


def test_a_users_document_meets_every_requirement(client, pictured):
    doc = served(client, "/actors/pictured")
    assert violations(doc) == []
    # the optional fields are there, so they were checked, not skipped
    for field in ("icon.url", "published", "discoverable", "name", "outbox", "followers"):
        assert lookup(doc, field) is not _MISSING, field
    assert doc["icon"] == {
        "type": "Image",
        "url": "https://cdn.example/avatars/p.png",
        "mediaType": "image/png",
    }
    assert doc["url"] == doc["id"]  # the HTML profile is served there to browsers
    html = client.get(urlsplit(doc["url"]).path, HTTP_ACCEPT="text/html")
    assert html.status_code == 200 and html["Content-Type"].startswith("text/html")


def test_no_icon_field_without_an_icon(client, demo):
    doc = served(client, "/actors/demo")
    assert "icon" not in doc
    assert violations(doc) == []


def test_the_instance_actors_document_meets_every_requirement(client, db):
    assert violations(served(client, "/actor")) == []


def test_the_minimal_form_still_serves_a_key_fetch(client, demo, settings):
    settings.FEDSX = {**settings.FEDSX, "AUTHORIZED_FETCH": True}
    doc = served(client, "/actors/demo")
    needed = [r for r in REQUIREMENTS if r.field.split(".")[0] in KEY_FETCH_FIELDS]
    assert needed and violations(doc, needed) == []


def test_the_checks_can_fail(client, demo):
    doc = served(client, "/actors/demo")
    broken = {
        **doc,
        "url": "https://elsewhere.example/@demo",
        "publicKey": {**doc["publicKey"], "owner": "https://elsewhere.example/u"},
    }
    del broken["preferredUsername"]
    found = "\n".join(violations(broken))
    assert "preferredUsername missing" in found
    assert "mismatching_origin" in found
    assert "owner is the actor" in found and "ExtractPublicKeyForOwner: owner" in found


def test_webfinger_loops_back_to_the_actor(client, demo):
    # check_webfinger!: acct:preferredUsername@host must answer with a self link to the id.
    doc = served(client, "/actors/demo")
    host = urlsplit(doc["id"]).netloc
    response = client.get("/.well-known/webfinger", {"resource": f"acct:demo@{host}"})
    finger = json.loads(response.content)
    assert finger["subject"] == f"acct:{doc['preferredUsername']}@{host}"
    (self_link,) = [link for link in finger["links"] if link["rel"] == "self"]
    assert self_link["href"] == doc["id"]


def test_the_multikey_meets_fep_521a(client, demo):
    doc = served(client, "/actors/demo")
    (key,) = doc["assertionMethod"]
    assert key["type"] == "Multikey"
    assert key["controller"] == doc["id"]  # "MUST match actor ID"
    assert key["id"].startswith(doc["id"] + "#")  # a fragment of the actor: one fetch
    proofs.decode_public_key(key["publicKeyMultibase"])  # base58btc, ed25519-pub prefix


def test_the_outboxs_first_page_is_reachable_from_the_collection(client, demo):
    record = outbox.post(
        demo,
        {"type": "Note", "content": "hi", "to": ["https://www.w3.org/ns/activitystreams#Public"]},
    )
    doc = served(client, "/actors/demo")
    collection = served(client, urlsplit(doc["outbox"]).path)
    assert collection["type"] == "OrderedCollection" and collection["id"] == doc["outbox"]
    assert isinstance(collection["totalItems"], int)  # collection_total_items: Numeric
    first = urlsplit(collection["first"])
    page = served(client, f"{first.path}?{first.query}")
    assert page["type"] == "OrderedCollectionPage" and page["partOf"] == doc["outbox"]
    assert [item["id"] for item in page["orderedItems"]] == [record.ap_id]
