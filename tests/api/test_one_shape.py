"""The commands' --json output and the API answer with the same serializers: one shape."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command

from fedsx.models import Host, InboxEntry
from tests.outbox.conftest import deliveries_in_every_status

pytestmark = pytest.mark.django_db


def run_json(*args) -> object:
    out = StringIO()
    call_command(*args, "--json", stdout=out, stderr=StringIO())
    return json.loads(out.getvalue())


@pytest.fixture
def made(demo):
    activity, made = deliveries_in_every_status(demo, {"type": "Create"})
    Host.objects.create(host="remote.example", state=Host.State.OPEN)
    InboxEntry.objects.create(actor=demo, activity=activity, seq=1)
    return made


def test_deliveries(admin, made):
    listed = admin.get("/api/v1/deliveries/").json()["results"]
    assert run_json("deliveries", "list") == listed
    held = made["held"].pk
    shown = run_json("deliveries", "show", str(held))
    assert shown.pop("host_state") == "open"  # the held one went to remote.example
    assert shown == admin.get(f"/api/v1/deliveries/{held}/").json()


def test_hosts(admin, made):
    assert run_json("hosts", "list") == admin.get("/api/v1/hosts/").json()["results"]


def test_inbox(admin, made):
    assert run_json("inbox", "demo") == admin.get("/api/v1/actors/demo/inbox/").json()["results"]


def test_post(admin, demo, tmp_path):
    path = tmp_path / "note.json"
    path.write_text(json.dumps({"type": "Note", "content": "hi"}))
    by_command = run_json("post", "--as", "demo", str(path))
    by_api = admin.post(
        "/api/v1/actors/demo/outbox/", {"activity": {"type": "Note", "content": "hi"}}
    ).json()
    assert set(by_command) == set(by_api)
    assert by_command["type"] == by_api["type"] == "Create"
