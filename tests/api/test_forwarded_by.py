"""Who forwarded an activity (issue 12, item 3) in the API and in ``manage.py inbox``."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from fedsx.models import Activity, InboxEntry

RELAY = "https://relay.example/actor"


@pytest.fixture
def entries(demo):
    plain = Activity.objects.create(
        ap_id="https://r.example/a/1",
        activity_cid="cid-plain",
        type="Follow",
        actor="https://r.example/u/bob",
        payload={"type": "Follow"},
    )
    relayed = Activity.objects.create(
        ap_id="https://r.example/a/2",
        activity_cid="cid-relayed",
        type="Create",
        actor="https://r.example/u/bob",
        forwarded_by=RELAY,
        payload={"type": "Create"},
    )
    InboxEntry.objects.create(actor=demo, seq=1, activity=plain)
    InboxEntry.objects.create(actor=demo, seq=2, activity=relayed)
    return plain, relayed


@pytest.mark.django_db
def test_activities_carry_who_forwarded_them(admin, entries):
    plain, relayed = entries
    listed = {
        a["id"]: a["forwarded_by"] for a in admin.get("/api/v1/activities/").json()["results"]
    }
    assert listed == {plain.pk: "", relayed.pk: RELAY}
    assert admin.get(f"/api/v1/activities/{relayed.pk}/").json()["forwarded_by"] == RELAY
    inbox = admin.get("/api/v1/actors/demo/inbox/").json()["results"]
    assert {e["seq"]: e["activity"]["forwarded_by"] for e in inbox} == {1: "", 2: RELAY}


@pytest.mark.django_db
def test_manage_py_inbox_says_who_forwarded(entries):
    out = StringIO()
    call_command("inbox", "demo", stdout=out)
    first, second = out.getvalue().splitlines()
    assert "forwarded" not in first
    assert second.endswith(f"from https://r.example/u/bob (forwarded by {RELAY})")
