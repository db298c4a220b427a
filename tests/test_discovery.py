import json

import pytest

from fedsx.models import Activity, Actor, Follow, OutboxEntry

AP = "application/activity+json"


def get_json(client, path, accept=AP, **params):
    response = client.get(path, params, HTTP_ACCEPT=accept)
    return response, json.loads(response.content)


@pytest.mark.django_db
class TestActor:
    def test_actor_document_has_key_and_endpoints(self, client, demo):
        response, doc = get_json(client, "/actors/demo")
        assert response.status_code == 200
        assert response["Content-Type"] == AP
        assert doc["id"] == "http://testserver/actors/demo"
        assert doc["type"] == "Person"
        assert doc["preferredUsername"] == "demo"
        assert doc["inbox"] == "http://testserver/actors/demo/inbox"
        assert doc["outbox"] == "http://testserver/actors/demo/outbox"
        assert doc["followers"].endswith("/actors/demo/followers")
        assert doc["following"].endswith("/actors/demo/following")
        assert doc["endpoints"]["sharedInbox"] == "http://testserver/inbox"
        assert doc["publicKey"]["id"] == "http://testserver/actors/demo#main-key"
        assert doc["publicKey"]["owner"] == doc["id"]
        assert doc["publicKey"]["publicKeyPem"].startswith("-----BEGIN PUBLIC KEY-----")
        assert "private" not in json.dumps(doc).lower()

    def test_ld_json_accept_gets_the_as2_profile(self, client, demo):
        accept = 'application/ld+json; profile="https://www.w3.org/ns/activitystreams"'
        response, doc = get_json(client, "/actors/demo", accept=accept)
        assert response.status_code == 200
        assert response["Content-Type"].startswith("application/ld+json")
        assert "activitystreams" in response["Content-Type"]
        assert doc["id"].endswith("/actors/demo")

    def test_no_accept_header_gets_activity_json(self, client, demo):
        response = client.get("/actors/demo")
        assert response["Content-Type"] == AP

    def test_browser_gets_html_profile(self, client, demo):
        response = client.get(
            "/actors/demo", HTTP_ACCEPT="text/html,application/xhtml+xml,*/*;q=0.8"
        )
        assert response.status_code == 200
        assert response["Content-Type"].startswith("text/html")
        body = response.content.decode()
        assert "@demo@testserver" in body
        assert 'type="application/activity+json"' in body

    def test_unknown_actor_is_a_json_404(self, client, db):
        response, body = get_json(client, "/actors/nobody")
        assert response.status_code == 404
        assert body["error"] == "not_found"
        assert "nobody" in body["detail"]

    def test_remote_actor_is_not_served(self, client, db):
        Actor.objects.create(
            ap_id="https://remote.example/u/x", username="x", domain="remote.example"
        )
        response, _ = get_json(client, "/actors/x")
        assert response.status_code == 404


@pytest.mark.django_db
class TestWebFinger:
    def test_acct_resource_points_to_actor(self, client, demo):
        response, jrd = get_json(
            client, "/.well-known/webfinger", accept="*/*", resource="acct:demo@testserver"
        )
        assert response.status_code == 200
        assert response["Content-Type"] == "application/jrd+json"
        assert jrd["subject"] == "acct:demo@testserver"
        self_link = next(link for link in jrd["links"] if link["rel"] == "self")
        assert self_link == {"rel": "self", "type": AP, "href": "http://testserver/actors/demo"}

    def test_actor_url_as_resource(self, client, demo):
        response, jrd = get_json(
            client, "/.well-known/webfinger", resource="http://testserver/actors/demo"
        )
        assert response.status_code == 200
        assert jrd["subject"] == "acct:demo@testserver"

    @pytest.mark.parametrize(
        "resource",
        [
            "",
            "demo",
            "acct:",
            "acct:demo",
            "acct:@testserver",
            "mailto:demo@testserver",
            "acct:demo@",
        ],
    )
    def test_malformed_resource_is_400(self, client, demo, resource):
        response, body = get_json(client, "/.well-known/webfinger", resource=resource)
        assert response.status_code == 400
        assert body["error"] == "bad_resource"

    def test_missing_resource_is_400(self, client, db):
        response = client.get("/.well-known/webfinger")
        assert response.status_code == 400

    @pytest.mark.parametrize(
        "resource",
        [
            "acct:nobody@testserver",
            "acct:demo@elsewhere.example",
            "https://elsewhere.example/actors/demo",
        ],
    )
    def test_unknown_is_404(self, client, demo, resource):
        response, body = get_json(client, "/.well-known/webfinger", resource=resource)
        assert response.status_code == 404
        assert body["error"] == "not_found"


@pytest.mark.django_db
def test_nodeinfo_discovery_and_document(client, demo):
    response, links = get_json(client, "/.well-known/nodeinfo", accept="*/*")
    assert response.status_code == 200
    (link,) = links["links"]
    assert link["rel"] == "http://nodeinfo.diaspora.software/ns/schema/2.1"
    assert link["href"] == "http://testserver/nodeinfo/2.1"
    response, info = get_json(client, "/nodeinfo/2.1", accept="*/*")
    assert response.status_code == 200
    assert "nodeinfo.diaspora.software/ns/schema/2.1" in response["Content-Type"]
    assert info["version"] == "2.1"
    assert info["software"]["name"] == "fedsx"
    assert info["protocols"] == ["activitypub"]
    assert info["usage"]["users"]["total"] == 1
    assert info["openRegistrations"] is False


def _publish(actor, n, *, private=()):
    """n posts; those numbered in ``private`` are not public (the outbox leaves them out)."""
    for i in range(1, n + 1):
        activity = Activity.objects.create(
            ap_id=f"http://testserver/a/{i}",
            activity_cid=f"cid{i}",
            type="Create",
            actor=actor.ap_id,
            payload={"id": f"http://testserver/a/{i}", "type": "Create"},
        )
        OutboxEntry.objects.create(actor=actor, seq=i, activity=activity, public=i not in private)


@pytest.mark.django_db
def test_outbox_is_a_paged_ordered_collection(client, demo, settings):
    settings.FEDSX = {"COLLECTION_PAGE_SIZE": 2}
    _publish(demo, 5)
    response, outbox = get_json(client, "/actors/demo/outbox")
    assert outbox["type"] == "OrderedCollection"
    assert outbox["totalItems"] == 5
    seen, url = [], outbox["first"]
    while url:
        path = url.replace("http://testserver", "")
        response = client.get(path, HTTP_ACCEPT=AP)
        page = json.loads(response.content)
        assert page["type"] == "OrderedCollectionPage"
        assert page["partOf"] == outbox["id"]
        seen += [item["id"] for item in page["orderedItems"]]
        url = page.get("next")
    assert seen == [f"http://testserver/a/{i}" for i in (5, 4, 3, 2, 1)]


@pytest.mark.django_db
def test_outbox_lists_only_public_posts(client, demo):
    _publish(demo, 4, private={2, 3})
    _, outbox = get_json(client, "/actors/demo/outbox")
    assert outbox["totalItems"] == 2
    _, page = get_json(client, "/actors/demo/outbox", page="true")
    assert [item["id"] for item in page["orderedItems"]] == [
        "http://testserver/a/4",
        "http://testserver/a/1",
    ]


@pytest.mark.django_db
def test_outbox_bad_cursor_is_400(client, demo):
    response, body = get_json(client, "/actors/demo/outbox", page="true", before="x")
    assert response.status_code == 400
    assert body["error"] == "bad_cursor"


@pytest.mark.django_db
def test_followers_and_following_count_accepted_follows(client, demo):
    remote = [
        Actor.objects.create(ap_id=f"https://r.example/u/{i}", username=f"u{i}", domain="r.example")
        for i in range(3)
    ]
    Follow.objects.create(follower=remote[0], following=demo, state="accepted")
    Follow.objects.create(follower=remote[1], following=demo, state="accepted")
    Follow.objects.create(follower=remote[2], following=demo, state="pending")
    Follow.objects.create(follower=demo, following=remote[0], state="accepted")
    _, followers = get_json(client, "/actors/demo/followers")
    assert followers["totalItems"] == 2
    _, page = get_json(client, "/actors/demo/followers", page="true")
    assert set(page["orderedItems"]) == {"https://r.example/u/0", "https://r.example/u/1"}
    _, following = get_json(client, "/actors/demo/following")
    assert following["totalItems"] == 1
    response, _ = get_json(client, "/actors/nobody/followers")
    assert response.status_code == 404


@pytest.mark.django_db
class TestHomePage:
    def test_lists_local_actors_and_not_remote_ones(self, client, demo):
        Actor.objects.create(ap_id="https://remote.example/users/zed", username="zed")
        response = client.get("/")
        assert response.status_code == 200
        page = response.content.decode()
        assert 'href="http://testserver/actors/demo"' in page
        assert "zed" not in page
        assert 'href="/admin/"' in page

    def test_without_actors_says_how_to_make_one(self, client):
        page = client.get("/").content.decode()
        assert "create_actor NAME" in page


@pytest.mark.django_db
def test_the_actor_document_says_when_follows_are_held_for_approval(client):
    from fedsx.actors import create_local_actor
    from triggers.models import Trigger

    create_local_actor("amy")
    create_local_actor("ben")

    def document(name: str) -> dict:
        response = client.get(f"/actors/{name}", HTTP_ACCEPT="application/activity+json")
        return response.json()

    assert document("amy")["manuallyApprovesFollowers"] is False
    assert (document("amy")["discoverable"], document("amy")["indexable"]) == (True, False)
    assert document("amy")["published"].endswith("Z")
    Trigger.objects.create(activity_type="Follow", flow_name="auto_accept")
    assert document("amy")["manuallyApprovesFollowers"] is False  # auto_accept holds nothing
    Trigger.objects.create(activity_type="Follow", flow_name="approval", actor_scope=["ben"])
    assert document("amy")["manuallyApprovesFollowers"] is False  # scoped to ben only
    assert document("ben")["manuallyApprovesFollowers"] is True
    Trigger.objects.create(activity_type="*", flow_name="approval", enabled=False)
    assert document("amy")["manuallyApprovesFollowers"] is False  # disabled
