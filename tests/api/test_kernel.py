"""The kernel's resources through the real API: credentials, model permissions, bad input,
refusals and cursor paging, for every endpoint."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from fedsx.actors import create_local_actor
from fedsx.models import Activity, Actor, Delivery, DomainBlock, Host, InboxEntry, OutboxEntry
from tests.outbox.conftest import deliveries_in_every_status

from .conftest import allowed

pytestmark = pytest.mark.django_db

# (method, path, the permission it needs); {ids} filled by the `world` fixture.
ENDPOINTS = [
    ("get", "/api/v1/actors/", "fedsx.view_actor"),
    ("post", "/api/v1/actors/", "fedsx.add_actor"),
    ("get", "/api/v1/actors/demo/", "fedsx.view_actor"),
    ("get", "/api/v1/actors/demo/inbox/", "fedsx.view_inboxentry"),
    ("get", "/api/v1/actors/demo/outbox/", "fedsx.view_outboxentry"),
    ("post", "/api/v1/actors/demo/outbox/", "fedsx.add_outboxentry"),
    ("get", "/api/v1/activities/", "fedsx.view_activity"),
    ("get", "/api/v1/activities/{activity}/", "fedsx.view_activity"),
    ("get", "/api/v1/deliveries/", "fedsx.view_delivery"),
    ("get", "/api/v1/deliveries/{pending}/", "fedsx.view_delivery"),
    ("post", "/api/v1/deliveries/{failed}/retry/", "fedsx.change_delivery"),
    ("post", "/api/v1/deliveries/{pending}/cancel/", "fedsx.change_delivery"),
    ("get", "/api/v1/hosts/", "fedsx.view_host"),
    ("get", "/api/v1/hosts/remote.example/", "fedsx.view_host"),
    ("post", "/api/v1/hosts/remote.example/clear/", "fedsx.change_host"),
    ("get", "/api/v1/domain-blocks/", "fedsx.view_domainblock"),
    ("post", "/api/v1/domain-blocks/", "fedsx.add_domainblock"),
    ("get", "/api/v1/domain-blocks/{block}/", "fedsx.view_domainblock"),
    ("patch", "/api/v1/domain-blocks/{block}/", "fedsx.change_domainblock"),
    ("delete", "/api/v1/domain-blocks/{block}/", "fedsx.delete_domainblock"),
]
GOOD_BODIES = {
    "/api/v1/actors/": {"name": "carol"},
    "/api/v1/actors/demo/outbox/": {"activity": {"type": "Note", "content": "hi"}},
    "/api/v1/domain-blocks/": {"domain": "spam.example"},
    "/api/v1/domain-blocks/{block}/": {"reason": "spam"},
}


@pytest.fixture
def world(demo):
    activity, made = deliveries_in_every_status(demo, {"type": "Create"})
    Host.objects.create(host="remote.example", state=Host.State.OPEN)
    block = DomainBlock.objects.create(domain="bad.example")
    return {
        "activity": activity.pk,
        "block": block.pk,
        **{status: d.pk for status, d in made.items()},
    }


def call(client, method, path, world, body=None):
    url = path.format(**world)
    if body is None:
        body = GOOD_BODIES.get(path)
    return getattr(client, method)(url, body, format="json")


def assert_error(response, status, code):
    assert response.status_code == status, response.content
    body = response.json()
    assert body["error"] == code, body
    assert body["detail"]
    return body


@pytest.mark.parametrize(("method", "path", "perm"), ENDPOINTS)
def test_no_credentials_is_401(anon, world, method, path, perm):
    assert_error(call(anon, method, path, world), 401, "not_authenticated")


@pytest.mark.parametrize(("method", "path", "perm"), ENDPOINTS)
def test_without_the_model_permission_is_403(operator, world, method, path, perm):
    # Every other kernel permission but this one: rights are per resource and per kind.
    others = [p for _, _, p in ENDPOINTS if p != perm]
    client = allowed(operator.user, *others)
    assert_error(call(client, method, path, world), 403, "permission_denied")


@pytest.mark.parametrize(("method", "path", "perm"), ENDPOINTS)
def test_with_the_model_permission_it_answers(operator, world, method, path, perm):
    response = call(allowed(operator.user, perm), method, path, world)
    assert response.status_code in (200, 201, 204), response.content


class TestActors:
    def test_create_is_create_actor(self, admin):
        response = admin.post("/api/v1/actors/", {"name": "carol", "display_name": "Carol"})
        assert response.status_code == 201, response.content
        carol = Actor.objects.get(username="carol", is_local=True)
        assert carol.private_key_pem and carol.name == "Carol"
        assert response.json()["id"] == carol.ap_id == "http://testserver/actors/carol"
        assert "private_key_pem" not in response.json()

    def test_bad_name_names_the_field(self, admin):
        body = assert_error(admin.post("/api/v1/actors/", {"name": "no spaces"}), 400, "invalid")
        assert set(body["fields"]) == {"name"}
        body = assert_error(admin.post("/api/v1/actors/", {}), 400, "invalid")
        assert set(body["fields"]) == {"name"}
        assert not Actor.objects.filter(is_local=True).exists()

    def test_existing_name_is_409(self, admin, demo):
        assert_error(admin.post("/api/v1/actors/", {"name": "demo"}), 409, "actor_exists")

    def test_filter_local(self, admin, demo):
        Actor.objects.create(ap_id="https://remote.example/u/x", domain="remote.example")
        local = admin.get("/api/v1/actors/", {"local": "true"}).json()["results"]
        assert [a["name"] for a in local] == ["demo"]
        remote = admin.get("/api/v1/actors/", {"domain": "Remote.Example"}).json()["results"]
        assert [a["id"] for a in remote] == ["https://remote.example/u/x"]

    def test_unknown_actor_is_404(self, admin, demo):
        assert_error(admin.get("/api/v1/actors/nobody/"), 404, "not_found")
        assert_error(admin.get("/api/v1/actors/nobody/inbox/"), 404, "not_found")


def add_activities(actor: Actor, n: int, type_="Like") -> list[Activity]:
    now = timezone.now()
    made = []
    for i in range(n):
        made.append(
            Activity.objects.create(
                ap_id=f"https://remote.example/a/{type_}/{i}",
                activity_cid=f"cid-{type_}-{i}",
                type=type_,
                actor="https://remote.example/u/bob",
                payload={"type": type_, "n": i},
                received_at=now - timedelta(minutes=n - i),
            )
        )
    return made


class TestActivities:
    def test_filter_by_type_actor_and_time(self, admin, demo):
        likes = add_activities(demo, 3, "Like")
        add_activities(demo, 2, "Announce")
        listed = admin.get("/api/v1/activities/", {"type": "Like"}).json()["results"]
        assert [a["id"] for a in listed] == [a.pk for a in reversed(likes)]
        assert "payload" not in listed[0]
        after = likes[1].received_at.isoformat()
        recent = admin.get("/api/v1/activities/", {"type": "Like", "received_after": after})
        assert [a["id"] for a in recent.json()["results"]] == [likes[2].pk, likes[1].pk]
        by_other = admin.get("/api/v1/activities/", {"actor": "https://else.example/u/x"})
        assert by_other.json()["results"] == []

    def test_detail_has_the_json(self, admin, demo):
        (like,) = add_activities(demo, 1)
        assert admin.get(f"/api/v1/activities/{like.pk}/").json()["payload"] == like.payload

    def test_bad_time_names_the_field(self, admin):
        body = assert_error(
            admin.get("/api/v1/activities/", {"received_after": "yesterday"}), 400, "invalid"
        )
        assert set(body["fields"]) == {"received_after"}


class TestLogs:
    def test_inbox_entries_newest_first_by_type(self, admin, demo):
        for seq, activity in enumerate(add_activities(demo, 3) + add_activities(demo, 1, "Follow")):
            InboxEntry.objects.create(actor=demo, activity=activity, seq=seq + 1)
        rows = admin.get("/api/v1/actors/demo/inbox/").json()["results"]
        assert [r["seq"] for r in rows] == [4, 3, 2, 1]
        follows = admin.get("/api/v1/actors/demo/inbox/", {"type": "Follow"}).json()["results"]
        assert [(r["seq"], r["activity"]["type"]) for r in follows] == [(4, "Follow")]

    def test_post_is_the_outbox_post(self, admin, demo):
        note = {
            "type": "Note",
            "content": "hello",
            "to": ["https://www.w3.org/ns/activitystreams#Public"],
        }
        response = admin.post("/api/v1/actors/demo/outbox/", {"activity": note}, format="json")
        assert response.status_code == 201, response.content
        body = response.json()
        assert body["type"] == "Create" and body["id"].startswith(f"{demo.ap_id}/activities/")
        assert body["deliveries"] == 0 and body["undeliverable"] == []
        entry = OutboxEntry.objects.get(actor=demo)
        assert entry.activity.ap_id == body["id"] and entry.public
        listed = admin.get("/api/v1/actors/demo/outbox/").json()["results"]
        assert [r["activity"]["ap_id"] for r in listed] == [body["id"]]

    @pytest.mark.parametrize(
        ("body", "code"),
        [
            ({}, "invalid"),
            ({"activity": "not an object"}, "invalid"),
            ({"activity": {"type": "Note", "attributedTo": "https://else.example/u/x"}}, None),
        ],
    )
    def test_bad_post_names_the_field_and_stores_nothing(self, admin, demo, body, code):
        response = admin.post("/api/v1/actors/demo/outbox/", body, format="json")
        assert response.status_code == 400, response.content
        error = response.json()
        assert set(error["fields"]) == {"activity"}
        if code:
            assert error["error"] == code
        assert not OutboxEntry.objects.exists() and not Activity.objects.exists()


class TestDeliveries:
    def test_filter_by_status_and_host(self, admin, world):
        held = admin.get("/api/v1/deliveries/", {"status": "held"}).json()["results"]
        assert [d["id"] for d in held] == [world["held"]]
        to_host = admin.get("/api/v1/deliveries/", {"host": "https://Remote.Example/x"})
        assert {d["host"] for d in to_host.json()["results"]} == {"remote.example"}
        assert len(to_host.json()["results"]) == 3

    def test_bad_status_names_the_field(self, admin, world):
        body = assert_error(admin.get("/api/v1/deliveries/", {"status": "lost"}), 400, "invalid")
        assert set(body["fields"]) == {"status"}

    def test_retry_hands_it_out_again(self, admin, world):
        response = admin.post(f"/api/v1/deliveries/{world['failed']}/retry/")
        assert response.status_code == 200, response.content
        assert response.json()["retried"] == [world["failed"]]
        assert Delivery.objects.get(pk=world["failed"]).status == Delivery.Status.PENDING

    def test_retry_of_a_delivered_one_is_409(self, admin, world):
        assert_error(
            admin.post(f"/api/v1/deliveries/{world['delivered']}/retry/"), 409, "delivered"
        )

    def test_cancel(self, admin, world):
        response = admin.post(f"/api/v1/deliveries/{world['held']}/cancel/")
        assert response.json() == {"cancelled": [world["held"]]}
        assert Delivery.objects.get(pk=world["held"]).status == Delivery.Status.CANCELLED

    @pytest.mark.parametrize("status", ["delivered", "failed", "expired", "cancelled"])
    def test_cancel_of_a_settled_one_is_409_and_changes_nothing(self, admin, world, status):
        assert_error(
            admin.post(f"/api/v1/deliveries/{world[status]}/cancel/"), 409, "not_cancellable"
        )
        assert Delivery.objects.get(pk=world[status]).status == status

    def test_unknown_delivery_is_404(self, admin, world):
        assert_error(admin.post("/api/v1/deliveries/999999/retry/"), 404, "not_found")


class TestHosts:
    def test_health_counts_what_waits(self, admin, world):
        (row,) = admin.get("/api/v1/hosts/", {"state": "open"}).json()["results"]
        assert (row["host"], row["state"], row["pending"], row["held"]) == (
            "remote.example",
            "open",
            1,
            1,
        )

    def test_clear_releases_held_deliveries(self, admin, world):
        Delivery.objects.filter(host="remote.example").update(status=Delivery.Status.HELD)
        response = admin.post("/api/v1/hosts/Remote.Example/clear/")
        assert response.status_code == 200, response.content
        assert response.json()["state"] == "ok" and len(response.json()["released"]) == 3
        assert Host.objects.get().state == Host.State.OK

    def test_unknown_host_is_404_and_bad_state_400(self, admin, world):
        assert_error(admin.post("/api/v1/hosts/nowhere.example/clear/"), 404, "not_found")
        body = assert_error(admin.get("/api/v1/hosts/", {"state": "sad"}), 400, "invalid")
        assert set(body["fields"]) == {"state"}


class TestDomainBlocks:
    def test_crud_normalizes_and_blocks(self, admin):
        from fedsx import blocks

        response = admin.post(
            "/api/v1/domain-blocks/", {"domain": "https://Spam.Example/", "reason": "spam"}
        )
        assert response.status_code == 201, response.content
        block = response.json()
        assert block["domain"] == "spam.example"
        assert blocks.is_blocked("sub.spam.example")
        patched = admin.patch(f"/api/v1/domain-blocks/{block['id']}/", {"reason": "worse"})
        assert patched.json()["reason"] == "worse"
        assert admin.delete(f"/api/v1/domain-blocks/{block['id']}/").status_code == 204
        assert not blocks.is_blocked("sub.spam.example")

    @pytest.mark.parametrize(
        "domain",
        [
            "",
            "   ",
            "bad.example",
            "BAD.example.",
            # 255 characters as typed, four times that in punycode: beyond the column.
            ".".join(["ü"] * 128),
            "a" * 64 + ".example",
            "spam..example",
            "spam example",
            "-spam.example",
        ],
    )
    def test_bad_or_taken_domain_names_the_field(self, admin, world, domain):
        body = assert_error(
            admin.post("/api/v1/domain-blocks/", {"domain": domain}), 400, "invalid"
        )
        assert set(body["fields"]) == {"domain"}
        assert DomainBlock.objects.count() == 1

    def test_a_block_made_meanwhile_is_a_409_not_a_500(self, admin, world, monkeypatch):
        from fedsx.api.serializers import DomainBlockSerializer
        from fedsx.models import normalize_domain

        # Another request's insert lands between this one's uniqueness check and its own.
        monkeypatch.setattr(
            DomainBlockSerializer, "validate_domain", lambda self, value: normalize_domain(value)
        )
        body = assert_error(
            admin.post("/api/v1/domain-blocks/", {"domain": "bad.example"}), 409, "conflict"
        )
        assert "meanwhile" in body["detail"]
        assert DomainBlock.objects.count() == 1


LISTS = [
    "/api/v1/actors/",
    "/api/v1/activities/",
    "/api/v1/actors/demo/inbox/",
    "/api/v1/actors/demo/outbox/",
    "/api/v1/deliveries/",
    "/api/v1/hosts/",
    "/api/v1/domain-blocks/",
]


@pytest.fixture
def many(demo):
    """Seven of each listed thing at least."""
    activities = add_activities(demo, 7)
    for seq, activity in enumerate(activities, 1):
        InboxEntry.objects.create(actor=demo, activity=activity, seq=seq)
        OutboxEntry.objects.create(actor=demo, activity=activity, seq=seq)
        Delivery.objects.create(
            activity=activity,
            sender=demo,
            inbox_url=f"https://h{seq}.example/inbox",
            host=f"h{seq}.example",
        )
        Host.objects.create(host=f"h{seq}.example")
        DomainBlock.objects.create(domain=f"b{seq}.example")
        create_local_actor(f"user{seq}")


@pytest.mark.parametrize("path", LISTS)
def test_cursor_pages_cover_everything_once(admin, many, path):
    everything = admin.get(path, {"limit": 500}).json()["results"]
    assert len(everything) >= 7
    seen, url, pages = [], f"{path}?limit=3", 0
    while url:
        page = admin.get(url).json()
        seen += page["results"]
        url, pages = page["next"], pages + 1
        assert pages < 20
    assert pages >= 3
    assert seen == everything  # the same order, nothing twice, nothing missed


@pytest.mark.parametrize("path", LISTS)
def test_bad_cursor_is_404_with_its_code(admin, demo, path):
    assert_error(admin.get(path, {"cursor": "garbage"}), 404, "invalid_cursor")


class TestWhatPostgresWouldRefuse:
    """Inputs the fuzzing of the schema may send: 400s naming the field, never a 500."""

    @pytest.mark.parametrize(
        ("url", "field"),
        [
            ("/api/v1/actors/a%00b/", "name"),
            ("/api/v1/actors/a%00b/inbox/", "name"),
            ("/api/v1/hosts/a%00b/", "host"),
            ("/api/v1/deliveries/?host=a%00b", "host"),
            ("/api/v1/activities/?type=a%00b", "type"),
        ],
    )
    def test_nul_in_a_path_or_query(self, admin, demo, url, field):
        body = assert_error(admin.get(url), 400, "invalid")
        assert set(body["fields"]) == {field}

    def test_nul_in_a_posted_activity(self, admin, demo):
        note = {"type": "Note", "content": "a\x00b"}
        response = admin.post("/api/v1/actors/demo/outbox/", {"activity": note})
        body = assert_error(response, 400, "unsupported_content")
        assert set(body["fields"]) == {"activity"}
        assert not Activity.objects.exists()

    @pytest.mark.parametrize("moment", ["0127-05-29T12:05:41+21:14", "2026-01-01T00:00:00-23:59"])
    def test_times_with_any_offset(self, admin, demo, moment):
        add_activities(demo, 1)
        response = admin.get("/api/v1/activities/", {"received_before": moment})
        assert response.status_code == 200, response.content

    def test_a_time_out_of_range_names_the_field(self, admin):
        response = admin.get("/api/v1/activities/", {"received_after": "0001-01-01T00:00:00+05:00"})
        body = assert_error(response, 400, "invalid")
        assert set(body["fields"]) == {"received_after"}
