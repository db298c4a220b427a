import json

import pytest
from django.contrib.auth.models import Permission, User
from django.urls import reverse

from triggers.models import Firing, Trigger
from triggers.pipeline import apply_triggers

from .conftest import add_trigger, append, follow


@pytest.fixture
def staff(client, db):
    user = User.objects.create_superuser("admin", "a@example.org", "pw")
    client.force_login(user)
    return client


def form(**overrides) -> dict:
    data = {
        "label": "approve",
        "activity_type": "Follow",
        "actor_scope": "",
        "sender_scope": "",
        "guard": "",
        "flow_name": "approval",
        "enabled": "on",
    }
    return {**data, **overrides}


@pytest.mark.django_db
def test_add_a_trigger_in_the_admin(staff, demo):
    url = reverse("admin:triggers_trigger_add")
    response = staff.post(url, form(actor_scope="demo\n", sender_scope="b.example, a.example"))
    assert response.status_code == 302
    trigger = Trigger.objects.get()
    assert trigger.actor_scope == ["demo"] and trigger.sender_scope == ["a.example", "b.example"]
    change = staff.get(reverse("admin:triggers_trigger_change", args=[trigger.pk]))
    assert b"Test against an activity" in change.content


@pytest.mark.django_db
@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"guard": "object.type =="}, "invalid guard"),
        ({"guard": "nope(actor)"}, "unknown function nope()"),
        ({"actor_scope": "ghost"}, "no local actor named ghost"),
        ({"guard": "(" * 1500 + "a" + ")" * 1500}, "nests at most"),
    ],
)
def test_the_admin_refuses_an_invalid_trigger(staff, demo, overrides, message):
    response = staff.post(reverse("admin:triggers_trigger_add"), form(**overrides))
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Trigger.objects.exists()


@pytest.mark.django_db
def test_test_against_an_activity_form(staff, demo):
    trigger = add_trigger(guard="object == 'http://testserver/actors/demo'")
    url = reverse("admin:triggers_trigger_test", args=[trigger.pk])
    assert staff.get(url).status_code == 200
    response = staff.post(url, {"activity": json.dumps(follow()), "recipient": demo.pk})
    body = response.content.decode()
    assert response.status_code == 200
    assert "<th>would fire</th><td><strong>yes</strong>" in body
    response = staff.post(url, {"activity": "{not json", "recipient": demo.pk})
    assert "not JSON" in response.content.decode()
    assert not Firing.objects.exists()


@pytest.mark.django_db
def test_firings_list_filters_and_links(staff, demo):
    add_trigger(label="approve")
    add_trigger(label="crash", flow_name="test.crash")
    entry = append(demo, follow())
    apply_triggers(entry)
    url = reverse("admin:triggers_firing_changelist")
    body = staff.get(url).content.decode()
    assert "suspended" in body and "crashed" in body
    assert reverse("admin:fedsx_activity_change", args=[entry.activity.pk]) in body
    assert "/admin/flows/flowinstance/" in body or "approval #" in body
    crashed = staff.get(url, {"outcome__exact": "crashed"}).context["cl"]
    assert [f.outcome for f in crashed.result_list] == ["crashed"]
    assert staff.get(url, {"actor": demo.pk}).context["cl"].result_count == 2
    assert staff.get(url, {"actor": demo.pk + 1}).context["cl"].result_count == 0
    assert staff.get(url, {"q": entry.activity.activity_cid}).context["cl"].result_count == 2
    trigger = Trigger.objects.get(label="approve")
    by_trigger = staff.get(url, {"trigger__id__exact": trigger.pk}).context["cl"]
    assert [f.trigger for f in by_trigger.result_list] == [trigger]
    firing = Firing.objects.first()
    assert staff.get(reverse("admin:triggers_firing_change", args=[firing.pk])).status_code == 200


def staff_with(client, *codenames: str) -> User:
    user = User.objects.create_user("clerk", password="pw", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    client.force_login(user)
    return user


@pytest.mark.django_db
@pytest.mark.parametrize("action, enabled", [("disable", True), ("enable", False)])
def test_switching_triggers_needs_the_change_permission(client, demo, action, enabled):
    trigger = add_trigger(enabled=enabled)
    staff_with(client, "view_trigger")
    changelist = reverse("admin:triggers_trigger_changelist")
    offered = client.get(changelist).context["action_form"]  # None: no action at all
    assert offered is None or action not in dict(offered.fields["action"].choices)
    client.post(changelist, {"action": action, "_selected_action": [trigger.pk]})
    assert Trigger.objects.get().enabled is enabled


@pytest.mark.django_db
def test_switching_triggers_with_the_change_permission(client, demo):
    trigger = add_trigger()
    staff_with(client, "view_trigger", "change_trigger")
    changelist = reverse("admin:triggers_trigger_changelist")
    client.post(changelist, {"action": "disable", "_selected_action": [trigger.pk]})
    assert Trigger.objects.get().enabled is False


@pytest.mark.django_db
def test_testing_a_trigger_needs_the_view_permission(client, demo):
    trigger = add_trigger()
    url = reverse("admin:triggers_trigger_test", args=[trigger.pk])
    staff_with(client)
    assert client.get(url).status_code == 403
    payload = {"activity": json.dumps(follow()), "recipient": demo.pk}
    assert client.post(url, payload).status_code == 403
    User.objects.get().user_permissions.add(Permission.objects.get(codename="view_trigger"))
    assert client.get(url).status_code == 200
