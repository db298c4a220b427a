"""The test sender: signs as a local actor and POSTs over real HTTP to a live server."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from fedsx.actors import create_local_actor
from fedsx.models import Activity, InboxEntry


def send(*args):
    out = StringIO()
    call_command("send_activity", *args, stdout=out)
    return out.getvalue().strip()


@pytest.fixture
def node(live_server, settings, transactional_db):
    """The live server as the node: ids minted for its origin, so Host matches."""
    settings.FEDSX = {**settings.FEDSX, "BASE_URL": live_server.url}
    return live_server


@pytest.fixture
def follow_file(tmp_path):
    path = tmp_path / "follow.json"
    path.write_text(json.dumps({"type": "Follow", "object": "http://testserver/actors/demo"}))
    return path


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("flag", [[], ["--rfc9421"]], ids=["cavage", "rfc9421"])
def test_send_activity_delivers_a_signed_activity(node, follow_file, flag):
    demo = create_local_actor("demo")
    inbox = f"{node.url}/actors/demo/inbox"
    output = send(str(follow_file), "--to", inbox, "--as", "demo", *flag)
    assert output.startswith("202")
    activity = Activity.objects.get()
    assert activity.actor == demo.ap_id  # filled in: the signer
    assert activity.ap_id.startswith(f"{demo.ap_id}/activities/")
    assert InboxEntry.objects.get().actor == demo


@pytest.mark.django_db(transaction=True)
def test_send_activity_reports_a_refusal(node, follow_file):
    create_local_actor("demo")
    with pytest.raises(CommandError, match="refused the activity \\(404\\)"):
        send(str(follow_file), "--to", f"{node.url}/actors/nobody/inbox", "--as", "demo")


@pytest.mark.django_db
def test_send_activity_bad_input(demo, tmp_path, follow_file):
    with pytest.raises(CommandError, match="no local actor named 'ghost'"):
        send(str(follow_file), "--to", "http://127.0.0.1:9/inbox", "--as", "ghost")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(CommandError, match="is not valid JSON"):
        send(str(bad), "--to", "http://127.0.0.1:9/inbox", "--as", "demo")
    with pytest.raises(CommandError, match="cannot read"):
        send(str(tmp_path / "missing.json"), "--to", "http://127.0.0.1:9/inbox", "--as", "demo")
    with pytest.raises(CommandError, match="could not deliver"):
        send(str(follow_file), "--to", "http://127.0.0.1:9/inbox", "--as", "demo")
