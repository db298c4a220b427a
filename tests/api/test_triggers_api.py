"""Triggers and firings through the API: permissions, bad input, pagination, and a trigger
made here firing on an activity delivered (signed) to the real inbox."""

from __future__ import annotations

import pytest

from fedsx.actors import create_local_actor
from fedsx.models import Activity
from tests.inbox.helpers import deliver, remote_sender
from tests.triggers import testflows  # noqa: F401  (registers test.done)
from tests.triggers.conftest import SENDER, add_trigger, append, follow
from triggers.models import Firing, Trigger
from triggers.pipeline import apply_triggers

from .conftest import allowed

pytestmark = pytest.mark.django_db

TRIGGERS = "/api/v1/triggers/"
FIRINGS = "/api/v1/firings/"
NEW = {"type": "Follow", "flow": "approval", "label": "approve follows"}


def each_page(client, url: str) -> list[dict]:
    """Every item, following the cursor's next links (each must work)."""
    items = []
    while url:
        response = client.get(url)
        assert response.status_code == 200, response.content
        page = response.json()
        items += page["results"]
        url = page["next"]
    return items


@pytest.fixture
def bob(db):
    return create_local_actor("bob")


@pytest.fixture
def trigger(demo) -> Trigger:
    return add_trigger(label="approve follows")


def endpoints(pk: int) -> list[tuple[str, str, dict | None]]:
    return [
        ("get", TRIGGERS, None),
        ("post", TRIGGERS, NEW),
        ("get", f"{TRIGGERS}{pk}/", None),
        ("patch", f"{TRIGGERS}{pk}/", {"label": "x"}),
        ("put", f"{TRIGGERS}{pk}/", NEW),
        ("delete", f"{TRIGGERS}{pk}/", None),
        ("post", f"{TRIGGERS}{pk}/enable/", None),
        ("post", f"{TRIGGERS}{pk}/disable/", None),
        ("post", f"{TRIGGERS}{pk}/test/", {"activity": follow()}),
        ("get", FIRINGS, None),
        ("get", f"{FIRINGS}1/", None),
    ]


def test_every_endpoint_needs_credentials(anon, trigger):
    for method, url, body in endpoints(trigger.pk):
        response = getattr(anon, method)(url, body, format="json")
        assert response.status_code == 401, (method, url)
        assert response.json()["error"] == "not_authenticated"
    assert Trigger.objects.get(pk=trigger.pk).label == "approve follows"


def test_every_endpoint_needs_its_model_permission(operator, trigger):
    for method, url, body in endpoints(trigger.pk):
        response = getattr(operator, method)(url, body, format="json")
        assert response.status_code == 403, (method, url)
        assert response.json()["error"] == "permission_denied"
    viewer = allowed(operator.user, "triggers.view_trigger")
    assert viewer.get(TRIGGERS).status_code == 200
    for method, url, body in endpoints(trigger.pk)[1:8]:
        if method != "get":
            assert getattr(viewer, method)(url, body, format="json").status_code == 403
    assert viewer.get(FIRINGS).status_code == 403  # firings have their own permission
    assert Trigger.objects.get(pk=trigger.pk).enabled


def test_add_a_trigger(operator, demo):
    client = allowed(operator.user, "triggers.add_trigger", "triggers.view_trigger")
    body = {**NEW, "actors": ["demo"], "senders": ["remote.example"], "guard": "type == 'Follow'"}
    response = client.post(TRIGGERS, body, format="json")
    assert response.status_code == 201, response.content
    made = response.json()
    trigger = Trigger.objects.get(pk=made["id"])
    assert made == {
        "id": trigger.pk,
        "label": "approve follows",
        "type": "Follow",
        "actors": ["demo"],
        "senders": ["remote.example"],
        "guard": "type == 'Follow'",
        "flow": "approval",
        "enabled": True,
        "trigger_cid": trigger.trigger_cid,
        "created_at": made["created_at"],
        "updated_at": made["updated_at"],
    }
    assert client.get(f"{TRIGGERS}{trigger.pk}/").json() == made


@pytest.mark.parametrize(
    "change, field",
    [
        ({"guard": "object.type =="}, "guard"),
        ({"guard": "nope(x)"}, "guard"),
        ({"flow": "no.such.flow"}, "flow"),
        ({"flow": " "}, "flow"),
        ({"type": "Follow Like"}, "type"),
        ({"type": None}, "type"),
        ({"actors": ["ghost"]}, "actors"),
        ({"actors": "demo"}, "actors"),
        ({"enabled": "maybe"}, "enabled"),
    ],
)
def test_bad_input_is_400_naming_the_field_and_stores_nothing(operator, demo, change, field):
    client = allowed(operator.user, "triggers.add_trigger")
    response = client.post(TRIGGERS, {**NEW, **change}, format="json")
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["error"] == "invalid" and field in body["fields"], body
    assert body["detail"].startswith(f"{field}:") or f"; {field}:" in body["detail"]
    assert not Trigger.objects.exists()


def test_a_duplicate_spec_is_refused(operator, trigger):
    client = allowed(operator.user, "triggers.add_trigger")
    response = client.post(TRIGGERS, {**NEW, "label": "again"}, format="json")
    assert response.status_code == 400
    assert "exactly this spec" in response.json()["detail"]
    assert Trigger.objects.count() == 1


def test_edit_a_trigger(operator, trigger):
    client = allowed(operator.user, "triggers.change_trigger")
    cid = trigger.trigger_cid
    renamed = client.patch(f"{TRIGGERS}{trigger.pk}/", {"label": "renamed"}, format="json")
    assert renamed.status_code == 200 and renamed.json()["trigger_cid"] == cid  # not the spec
    guarded = client.patch(
        f"{TRIGGERS}{trigger.pk}/", {"guard": "  object != ''  "}, format="json"
    ).json()
    assert guarded["guard"] == "object != ''" and guarded["label"] == "renamed"
    assert guarded["trigger_cid"] != cid  # a new spec: a new trigger
    bad = client.patch(f"{TRIGGERS}{trigger.pk}/", {"guard": "a =="}, format="json")
    assert bad.status_code == 400 and "guard" in bad.json()["fields"]
    replaced = client.put(
        f"{TRIGGERS}{trigger.pk}/", {"type": "Like", "flow": "test.done"}, format="json"
    )
    assert replaced.status_code == 200, replaced.content
    trigger.refresh_from_db()
    assert (trigger.activity_type, trigger.flow_name, trigger.guard) == ("Like", "test.done", "")
    assert (trigger.label, trigger.actor_scope) == ("", [])  # PUT replaces the whole spec


def test_enable_disable_delete(operator, trigger):
    client = allowed(operator.user, "triggers.change_trigger", "triggers.delete_trigger")
    off = client.post(f"{TRIGGERS}{trigger.pk}/disable/")
    assert off.status_code == 200 and off.json()["enabled"] is False
    assert not Trigger.objects.get(pk=trigger.pk).enabled
    assert client.post(f"{TRIGGERS}{trigger.pk}/disable/").json()["enabled"] is False
    assert client.post(f"{TRIGGERS}{trigger.pk}/enable/").json()["enabled"] is True
    assert client.post(f"{TRIGGERS}999/enable/").status_code == 404
    assert client.post(f"{TRIGGERS}{2**70}/enable/").status_code == 404
    assert client.delete(f"{TRIGGERS}{trigger.pk}/").status_code == 204
    assert not Trigger.objects.exists()
    assert client.delete(f"{TRIGGERS}{trigger.pk}/").status_code == 404


def test_test_against_an_activity_given_or_stored(operator, demo):
    trigger = add_trigger(guard="object == 'http://testserver/actors/demo'", actor_scope=["demo"])
    client = allowed(operator.user, "triggers.view_trigger")
    url = f"{TRIGGERS}{trigger.pk}/test/"
    verdict = client.post(url, {"activity": follow()}, format="json")
    assert verdict.status_code == 200, verdict.content
    assert verdict.json() == {
        "trigger": trigger.pk,
        "recipient": "demo",
        "sender": SENDER,
        "type_matches": True,
        "actor_in_scope": True,
        "sender_in_scope": True,
        "guard_passes": True,
        "guard_error": None,
        "enabled": True,
        "would_fire": True,
    }
    stored = append(demo, follow(target="http://testserver/actors/other")).activity
    by_id = client.post(url, {"activity_id": stored.pk}, format="json").json()
    assert by_id["guard_passes"] is False and by_id["would_fire"] is False
    assert not Firing.objects.exists()  # a test fires nothing


@pytest.mark.parametrize(
    "body, field",
    [
        ({}, "activity"),
        ({"activity": [1]}, "activity"),
        ({"activity": {"type": "Follow"}, "activity_id": 1}, "activity"),
        ({"activity_id": 10**9}, "activity_id"),
        ({"activity_id": 2**70}, "activity_id"),
        ({"activity_id": "x"}, "activity_id"),
        ({"activity": {"type": "Follow"}, "recipient": "ghost"}, "recipient"),
    ],
)
def test_test_refuses_bad_input(operator, trigger, body, field):
    client = allowed(operator.user, "triggers.view_trigger")
    response = client.post(f"{TRIGGERS}{trigger.pk}/test/", body, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()["fields"]


def test_a_guard_error_is_a_verdict_not_a_failure(operator, demo):
    trigger = add_trigger(guard="contains(object, `1`)")
    client = allowed(operator.user, "triggers.view_trigger")
    verdict = client.post(f"{TRIGGERS}{trigger.pk}/test/", {"activity": follow()}, format="json")
    assert verdict.status_code == 200
    assert verdict.json()["guard_error"] and not verdict.json()["would_fire"]


def test_a_trigger_made_through_the_api_fires_on_a_delivered_activity(
    operator, demo, client, django_capture_on_commit_callbacks
):
    api = allowed(operator.user, "triggers.add_trigger", "triggers.view_firing")
    made = api.post(
        TRIGGERS,
        {"type": "Follow", "flow": "test.done", "actors": ["demo"], "guard": "type == 'Follow'"},
        format="json",
    ).json()
    sender = remote_sender(SENDER)
    activity = follow()
    with django_capture_on_commit_callbacks(execute=True):
        response = deliver(client, "/actors/demo/inbox", activity, sender)
    assert response.status_code in (200, 201, 202), response.content
    firings = api.get(FIRINGS, {"trigger": made["id"]}).json()["results"]
    assert len(firings) == 1
    (firing,) = firings
    stored = Activity.objects.get(ap_id=activity["id"])
    assert firing["actor"] == "demo" and firing["activity_cid"] == stored.activity_cid
    assert firing["outcome"] == "done" and firing["trigger_cid"] == made["trigger_cid"]
    assert firing["flow_instance"] is not None


def test_firings_filter_by_outcome_trigger_and_actor(operator, demo, bob):
    follows = add_trigger(flow_name="test.done")
    crashes = add_trigger(flow_name="test.crash", actor_scope=["bob"])
    for recipient in (demo, bob, demo):
        apply_triggers(append(recipient, follow()))
    client = allowed(operator.user, "triggers.view_firing")
    ids = lambda **q: {f["id"] for f in client.get(FIRINGS, q).json()["results"]}  # noqa: E731
    every = ids()
    assert len(every) == 4
    assert ids(outcome="crashed") == set(
        Firing.objects.filter(trigger=crashes).values_list("id", flat=True)
    )
    assert len(ids(trigger=follows.pk)) == 3 and len(ids(actor="bob")) == 2
    assert ids(actor="bob", outcome="done") == set(
        Firing.objects.filter(actor=bob, trigger=follows).values_list("id", flat=True)
    )
    assert ids(actor="nobody") == set()
    bad = client.get(FIRINGS, {"outcome": "exploded"})
    assert bad.status_code == 400 and "outcome" in bad.json()["fields"]
    for bad in ("x", "1.5", "NaN", 2**70):
        assert client.get(FIRINGS, {"trigger": bad}).status_code == 400
    one = min(every)
    assert client.get(f"{FIRINGS}{one}/").json()["id"] == one


def test_lists_page_with_a_cursor(operator, demo):
    for n in range(7):
        add_trigger(label=f"t{n}", guard=f"object != '{n}'")
    apply_triggers(append(demo, follow()))
    client = allowed(operator.user, "triggers.view_trigger", "triggers.view_firing")
    triggers = each_page(client, f"{TRIGGERS}?limit=3")
    assert [t["label"] for t in triggers] == [f"t{n}" for n in range(7)]  # oldest first
    firings = each_page(client, f"{FIRINGS}?limit=2")
    ids = [f["id"] for f in firings]
    assert len(ids) == len(set(ids)) == 7 and ids == sorted(ids, reverse=True)  # newest first
    bad = client.get(f"{FIRINGS}?cursor=garbage")
    assert bad.status_code == 404 and bad.json()["error"] == "invalid_cursor"


def test_the_command_prints_what_the_api_answers(admin, demo):
    import json
    from io import StringIO

    from django.core.management import call_command

    made = admin.post(TRIGGERS, {**NEW, "actors": ["demo"]}).json()
    add_trigger(activity_type="Like", flow_name="test.done")
    out = StringIO()
    call_command("triggers", "list", "--json", stdout=out)
    assert json.loads(out.getvalue()) == admin.get(TRIGGERS).json()["results"]
    assert json.loads(out.getvalue())[0] == made
