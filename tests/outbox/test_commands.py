"""The operator commands of the outbox: post, follow, unfollow, deliveries, hosts.

Every refusal is one line, exits non-zero and leaves the database as it was. Nothing here
leaves the machine: the tests' transactions never commit, so no delivery is attempted, and
``follow`` resolves its targets on a loopback server.
"""

from __future__ import annotations

import io
import json
import re
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from fedsx.actors import instance_actor
from fedsx.models import Activity, Actor, Delivery, Follow, Host, InboxEntry, OutboxEntry
from tests.keyserver import KeyServer
from tests.outbox.conftest import deliveries_in_every_status

pytestmark = pytest.mark.django_db

REMOTE = "https://remote.example"
ACTIVITY_ID = re.compile(r"^http://testserver/actors/demo/activities/[0-9a-f-]{36}$")
Status = Delivery.Status


def run(*args, stdin=None):
    out = StringIO()
    extra = {"stdin": stdin} if stdin is not None else {}
    call_command(*args, stdout=out, stderr=StringIO(), **extra)
    return out.getvalue().strip()


def run_json(*args, **kwargs):
    return json.loads(run(*args, "--json", **kwargs))


def snapshot() -> dict:
    """Row counts of every table a command could touch, and the states it could change."""
    return {
        "counts": [
            m.objects.count()
            for m in (Actor, Activity, OutboxEntry, InboxEntry, Delivery, Follow, Host)
        ],
        "deliveries": list(
            Delivery.objects.order_by("id").values_list("id", "status", "next_attempt_at")
        ),
        "hosts": list(Host.objects.order_by("id").values_list("host", "state", "retry_at")),
        "follows": list(Follow.objects.order_by("id").values_list("id", "state")),
        "outbox_seq": list(Actor.objects.order_by("id").values_list("outbox_seq", flat=True)),
    }


def refused(*args, match: str, **kwargs) -> str:
    """Run a command that must refuse: one line, nothing changed; returns the line."""
    before = snapshot()
    with pytest.raises(CommandError) as info:
        run(*args, **kwargs)
    line = str(info.value)
    assert "\n" not in line and line.strip() == line and line
    assert re.search(match, line), line
    assert snapshot() == before
    return line


def remote_actor(name: str, origin: str = REMOTE, *, shared: bool = True) -> Actor:
    host = origin.split("//", 1)[1]
    return Actor.objects.create(
        ap_id=f"{origin}/users/{name}",
        username=name,
        domain=host,
        inbox_url=f"{origin}/users/{name}/inbox",
        shared_inbox_url=f"{origin}/inbox" if shared else "",
        followers_url=f"{origin}/users/{name}/followers",
    )


@pytest.fixture
def bob(db):
    return remote_actor("bob")


@pytest.fixture
def note_file(tmp_path, bob):
    path = tmp_path / "note.json"
    path.write_text(json.dumps({"type": "Note", "content": "hello", "to": [bob.ap_id]}))
    return path


# ── post ───────────────────────────────────────────────────────────────────────────────


def test_post_a_bare_object_prints_the_minted_id_and_records_a_delivery(demo, bob, note_file):
    posted = run("post", "--as", "demo", str(note_file))
    assert ACTIVITY_ID.match(posted)
    activity = Activity.objects.get(ap_id=posted)
    assert activity.type == "Create"
    assert activity.payload["object"]["content"] == "hello"
    assert activity.payload["object"]["attributedTo"] == demo.ap_id
    assert OutboxEntry.objects.get(activity=activity).actor == demo
    delivery = Delivery.objects.get(activity=activity)
    assert (delivery.inbox_url, delivery.host, delivery.status) == (
        f"{REMOTE}/inbox",
        "remote.example",
        Status.PENDING,
    )


def test_post_json_from_stdin(demo, bob):
    like = {"type": "Like", "object": f"{REMOTE}/notes/1", "to": [bob.ap_id]}
    data = run_json("post", "--as", "demo", "-", stdin=io.StringIO(json.dumps(like)))
    assert ACTIVITY_ID.match(data["id"])
    assert (data["type"], data["deliveries"], data["undeliverable"]) == ("Like", 1, [])
    assert Activity.objects.get(ap_id=data["id"]).payload["object"] == f"{REMOTE}/notes/1"


def test_post_to_nobody_remote_makes_no_delivery(demo, tmp_path):
    path = tmp_path / "public.json"
    path.write_text(
        json.dumps({"type": "Note", "content": "hi", "to": ["as:Public", demo.followers_url]})
    )
    data = run_json("post", "--as", "demo", str(path))
    assert data["deliveries"] == 0
    assert OutboxEntry.objects.get(activity__ap_id=data["id"]).public


def test_post_reports_a_recipient_without_an_inbox(demo, tmp_path):
    mute = Actor.objects.create(
        ap_id=f"{REMOTE}/users/mute", username="mute", domain="remote.example"
    )
    path = tmp_path / "note.json"
    path.write_text(json.dumps({"type": "Note", "content": "hi", "to": [mute.ap_id]}))
    out, err = StringIO(), StringIO()
    call_command("post", "--as", "demo", str(path), stdout=out, stderr=err)
    assert ACTIVITY_ID.match(out.getvalue().strip())
    assert f"not delivered to {mute.ap_id}: no inbox to deliver to" in err.getvalue()
    assert Delivery.objects.get().status == Status.FAILED


@pytest.mark.parametrize(
    "content, match",
    [
        ("{not json", r"is not valid JSON"),
        ('[{"type": "Note"}]', r"holds a JSON array"),
        ('"a string"', r"does not hold a JSON object"),
        ("", r"is not valid JSON"),
        (b"\xff\xfe{}", r"is not valid JSON"),
        ('{"type": "Note", "id": "https://x.example/1"}', r"the outbox mints ids"),
        ('{"content": "no type"}', r"needs a type"),
        ('{"type": "Note", "attributedTo": "https://remote.example/users/bob"}', r"must be"),
    ],
)
def test_post_refuses_bad_documents(demo, bob, tmp_path, content, match):
    path = tmp_path / "bad.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    refused("post", "--as", "demo", str(path), match=match)


def test_post_refuses_an_unreadable_file(demo, tmp_path):
    refused("post", "--as", "demo", str(tmp_path / "missing.json"), match=r"^cannot read .*")
    refused("post", "--as", "demo", str(tmp_path), match=r"^cannot read .*")


def test_post_refuses_an_unknown_or_remote_actor(demo, bob, note_file):
    refused("post", "--as", "nobody", str(note_file), match=r"no local actor named 'nobody'")
    refused("post", "--as", "bob", str(note_file), match=r"no local actor named 'bob'")


def test_post_refusal_with_json_prints_the_error_code(demo, tmp_path):
    path = tmp_path / "array.json"
    path.write_text("[]")
    out = StringIO()
    with pytest.raises(CommandError):
        call_command("post", "--as", "demo", str(path), "--json", stdout=out, stderr=StringIO())
    assert json.loads(out.getvalue())["error"] == "not_an_object"


def test_a_refusal_exits_non_zero_with_one_line_on_stderr(demo, capsys):
    from fedsx.management.commands.post import Command

    with pytest.raises(SystemExit) as exited:
        Command().run_from_argv(["manage.py", "post", "--as", "nobody", "/nonexistent.json"])
    assert exited.value.code == 1
    assert capsys.readouterr().err == "CommandError: no local actor named 'nobody'\n"


# ── follow and unfollow ────────────────────────────────────────────────────────────────


def actor_document(origin: str, name: str) -> dict:
    ap_id = f"{origin}/users/{name}"
    return {
        "@context": ["https://www.w3.org/ns/activitystreams", "https://w3id.org/security/v1"],
        "id": ap_id,
        "type": "Person",
        "preferredUsername": name,
        "inbox": f"{ap_id}/inbox",
        "outbox": f"{ap_id}/outbox",
        "followers": f"{ap_id}/followers",
        "following": f"{ap_id}/following",
        "endpoints": {"sharedInbox": f"{origin}/inbox"},
        "publicKey": {
            "id": f"{ap_id}#main-key",
            "owner": ap_id,
            "publicKeyPem": PUBLIC_KEY_PEM,
        },
    }


PUBLIC_KEY_PEM = """-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAu1SU1LfVLPHCozMxH2Mo
4lgOEePzNm0tRgeLezV6ffAt0gunVTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u
+qKhbwKfBstIs+bMY2Zkp18gnTxKLxoS2tFczGkPLPgizskuemMghRniWaoLcyeh
kd3qqGElvW/VDL5AaWTg0nLVkjRo9z+40RQzuVaE8AkAFmxZzow3x+VJYKdjykkJ
0iT9wCS0DRTXu269V264Vf/3jvredZiKRkgwlL9xNAwxXFg0x/XFw005UWVRIkdg
cKWTjpBP2dPwVZ4WWC+9aGVd+Gyn1o0CLelf4rEjGoXbAAEgAqeGUxrcIlbjXfbc
mwIDAQAB
-----END PUBLIC KEY-----"""


@pytest.fixture
def peer(settings, db):
    # The node's own actor signs every fetch and is made on the first: here it exists
    # already, as on any node that has fetched before, so that "nothing changed" below
    # is about what a refused command did, not about the node's first fetch.
    instance_actor()
    with KeyServer() as server:
        settings.FEDSX = {**settings.FEDSX, "FETCH_ALLOWLIST": f"127.0.0.1:{server.port}"}
        yield server


def test_follow_by_url_posts_a_pending_follow(demo, peer):
    url = peer.serve("/users/carol", actor_document(peer.origin, "carol"))
    posted = run("follow", "--as", "demo", url)
    assert ACTIVITY_ID.match(posted)
    activity = Activity.objects.get(ap_id=posted)
    assert activity.type == "Follow"
    assert activity.payload["object"] == url and activity.payload["to"] == [url]
    follow = Follow.objects.get(follower=demo, following__ap_id=url)
    assert (follow.state, follow.follow_activity_id) == (Follow.State.PENDING, posted)
    delivery = Delivery.objects.get(activity=activity)
    assert delivery.inbox_url == f"{peer.origin}/inbox"


def test_follow_json_output(demo, peer):
    url = peer.serve("/users/carol", actor_document(peer.origin, "carol"))
    data = run_json("follow", "--as", "demo", url)
    assert (data["type"], data["object"], data["state"], data["deliveries"]) == (
        "Follow",
        url,
        "pending",
        1,
    )


def test_follow_starts_the_follow_flow_which_ends_when_the_accept_arrives(demo, peer):
    from fedsx.kernel import append_inbox
    from flows import store
    from flows.models import FlowInstance
    from triggers.pipeline import apply_entries

    url = peer.serve("/users/carol", actor_document(peer.origin, "carol"))
    data = run_json("follow", "--as", "demo", url, "--timeout", "120")
    instance = FlowInstance.objects.get(pk=data["flow_instance"])
    assert (instance.flow_name, instance.waiting_kind) == ("follow", "activity")
    left = (instance.wake_at - timezone.now()).total_seconds()
    assert 100 < left <= 120
    accept = {"id": f"{url}#accepts/1", "type": "Accept", "actor": url, "object": data["id"]}
    (entry,) = append_inbox(accept, [demo]).entries
    apply_entries([entry.pk])
    assert store.status(instance.pk).value["outcome"] == "accepted"
    assert Follow.objects.get(follower=demo, following__ap_id=url).state == "accepted"


def test_follow_refuses_a_bad_timeout(demo, peer):
    url = peer.serve("/users/carol", actor_document(peer.origin, "carol"))
    before = (Activity.objects.count(), Delivery.objects.count())
    with pytest.raises(CommandError, match="--timeout is a positive number"):
        run("follow", "--as", "demo", url, "--timeout", "-5")
    assert (Activity.objects.count(), Delivery.objects.count()) == before


def test_follow_refuses_an_unresolvable_target(demo, peer):
    missing = f"{peer.origin}/users/nobody"  # the server answers 404
    refused("follow", "--as", "demo", missing, match=r"^cannot resolve ")
    refused("follow", "--as", "demo", "not a target", match=r"^cannot resolve ")
    assert peer.hits["/users/nobody"] >= 1


def test_follow_refuses_an_unknown_actor_before_any_fetch(demo, peer):
    url = peer.serve("/users/carol", actor_document(peer.origin, "carol"))
    refused("follow", "--as", "nobody", url, match=r"no local actor named 'nobody'")
    assert peer.hits["/users/carol"] == 0


def test_follow_refuses_an_accepted_follow_and_oneself(demo, peer):
    url = peer.serve("/users/carol", actor_document(peer.origin, "carol"))
    run("follow", "--as", "demo", url)
    Follow.objects.filter(follower=demo).update(state=Follow.State.ACCEPTED)
    refused("follow", "--as", "demo", url, match=r"already follows")
    refused("follow", "--as", "demo", demo.ap_id, match=r"cannot follow itself")


def test_unfollow_posts_an_undo_of_the_follow(demo, bob):
    Follow.objects.create(
        follower=demo,
        following=bob,
        state=Follow.State.ACCEPTED,
        follow_activity_id=f"{demo.ap_id}/activities/f1",
    )
    posted = run("unfollow", "--as", "demo", "@bob@remote.example")
    assert ACTIVITY_ID.match(posted)
    undo = Activity.objects.get(ap_id=posted)
    assert undo.type == "Undo"
    assert undo.payload["object"] == {
        "type": "Follow",
        "id": f"{demo.ap_id}/activities/f1",
        "actor": demo.ap_id,
        "object": bob.ap_id,
    }
    assert not Follow.objects.filter(follower=demo).exists()
    assert Delivery.objects.get(activity=undo).inbox_url == f"{REMOTE}/inbox"


@pytest.mark.parametrize(
    "target", ["acct:bob@remote.example", "bob@Remote.Example", f"{REMOTE}/users/bob"]
)
def test_unfollow_finds_the_follow_by_any_name(demo, bob, target):
    Follow.objects.create(follower=demo, following=bob, follow_activity_id="x")
    data = run_json("unfollow", "--as", "demo", target)
    assert data["type"] == "Undo" and data["unfollowed"] == bob.ap_id
    assert not Follow.objects.exists()


def test_follow_then_unfollow(demo, peer):
    url = peer.serve("/users/carol", actor_document(peer.origin, "carol"))
    followed = run("follow", "--as", "demo", url)
    undo = Activity.objects.get(ap_id=run("unfollow", "--as", "demo", url))
    assert undo.payload["object"]["id"] == followed
    assert not Follow.objects.exists()


def test_unfollow_refuses_when_not_following(demo, bob):
    Follow.objects.create(follower=bob, following=demo)  # bob follows demo, not the reverse
    refused("unfollow", "--as", "demo", "bob@remote.example", match=r"demo does not follow")
    refused("unfollow", "--as", "demo", bob.ap_id, match=r"demo does not follow")
    refused("unfollow", "--as", "demo", "nonsense", match=r"demo does not follow")
    refused("unfollow", "--as", "nobody", bob.ap_id, match=r"no local actor named")


# ── deliveries ─────────────────────────────────────────────────────────────────────────


@pytest.fixture
def rows(demo, bob):
    """One delivery in each status, to two hosts."""
    now = timezone.now()
    _, made = deliveries_in_every_status(
        demo,
        {"type": "Create", "id": f"{demo.ap_id}/activities/a1"},
        last_status=lambda status: {"failed": 404, "expired": 503}.get(status),
        last_error=lambda status: {"failed": "HTTP 404", "expired": "HTTP 503"}.get(status, ""),
        next_attempt_at=lambda status: now + timedelta(minutes=Status.values.index(status)),
        delivered_at=lambda status: now if status == Status.DELIVERED else None,
    )
    Host.objects.create(host="remote.example")
    Host.objects.create(host="other.example")
    return made


def test_deliveries_list_and_filters(rows):
    assert len(run("deliveries", "list").splitlines()) == len(rows)
    failed = run("deliveries", "list", "--status", "failed")
    assert failed.split()[0] == str(rows["failed"].pk) and "HTTP 404" in failed
    listed = run_json("deliveries", "list", "--host", "Remote.Example")
    assert {d["host"] for d in listed} == {"remote.example"}
    assert len(listed) == 3
    newest = run_json("deliveries", "list", "--limit", "1")
    assert [d["id"] for d in newest] == [max(r.pk for r in rows.values())]
    of_activity = run_json(
        "deliveries", "list", "--activity", "http://testserver/actors/demo/activities/a1"
    )
    assert len(of_activity) == len(rows)
    assert run("deliveries", "list", "--host", "unknown.example") == "no deliveries"


def test_deliveries_list_refuses_a_bad_status_or_limit(rows):
    refused("deliveries", "list", "--status", "lost", match=r"--status must be one of pending")
    refused("deliveries", "list", "--limit", "0", match=r"--limit must be between")


def test_deliveries_show(rows):
    failed = rows["failed"]
    text = run("deliveries", "show", str(failed.pk))
    assert text.splitlines()[0] == f"delivery {failed.pk}: failed"
    for expected in (
        "activity:     http://testserver/actors/demo/activities/a1 (Create)",
        "inbox:        https://remote.example/inbox/failed",
        "host:         remote.example (ok)",
        "attempts:     2",
        "last status:  404",
        "last error:   HTTP 404",
        "next attempt: —",
        "delivered at: —",
    ):
        assert expected in text
    data = run_json("deliveries", "show", str(rows["delivered"].pk))
    assert data["status"] == "delivered" and data["delivered_at"]
    assert data["inbox"] == "https://other.example/inbox/delivered"


@pytest.mark.parametrize("bad", ["999999", "abc", "²", "-1", "9" * 30, ""])
def test_deliveries_show_refuses_an_unknown_id(rows, bad):
    refused("deliveries", "show", bad, match=r"^there is no delivery ")


def test_deliveries_retry_one(rows):
    failed = rows["failed"]
    data = run_json("deliveries", "retry", str(failed.pk))
    assert data["retried"] == [failed.pk]
    failed.refresh_from_db()
    assert failed.status == Status.PENDING
    assert failed.next_attempt_at <= timezone.now()


def test_deliveries_retry_failed_then_by_host(rows):
    data = run_json("deliveries", "retry", "--failed")
    assert sorted(data["retried"]) == sorted([rows["failed"].pk, rows["expired"].pk])
    statuses = dict(Delivery.objects.values_list("pk", "status"))
    assert statuses[rows["held"].pk] == Status.HELD  # --failed: only failed and expired
    assert statuses[rows["failed"].pk] == statuses[rows["expired"].pk] == Status.PENDING
    # other.example: the expired one (pending now) again, never the delivered or cancelled
    assert run("deliveries", "retry", "--host", "other.example") == ("1 delivery handed out again")
    assert Delivery.objects.get(pk=rows["cancelled"].pk).status == Status.CANCELLED
    assert Delivery.objects.get(pk=rows["delivered"].pk).status == Status.DELIVERED
    data = run_json("deliveries", "retry", "--host", "remote.example", "--failed")
    assert data["retried"] == []  # nothing failed there any more


def test_deliveries_retry_notes_a_held_host(rows):
    Host.objects.filter(host="remote.example").update(
        state=Host.State.OPEN, retry_at=timezone.now() + timedelta(minutes=1)
    )
    text = run("deliveries", "retry", str(rows["held"].pk))
    assert text.splitlines()[0] == f"delivery {rows['held'].pk} handed out again"
    assert "note: remote.example is held" in text and "hosts clear remote.example" in text


def test_deliveries_retry_refusals(rows):
    refused("deliveries", "retry", match=r"give a delivery id, --host HOST or --failed")
    refused("deliveries", "retry", str(rows["failed"].pk), "--failed", match=r"not both")
    refused("deliveries", "retry", "999999", match=r"there is no delivery")
    refused("deliveries", "retry", str(rows["delivered"].pk), match=r"was delivered")
    refused("deliveries", "retry", "--host", "nowhere.example", match=r"host 'nowhere.example'")


def test_deliveries_cancel(rows):
    pending = rows["pending"]
    assert run("deliveries", "cancel", str(pending.pk)) == f"delivery {pending.pk} cancelled"
    assert Delivery.objects.get(pk=pending.pk).status == Status.CANCELLED
    assert run_json("deliveries", "cancel", str(rows["held"].pk)) == {
        "cancelled": [rows["held"].pk]
    }


def test_cancel_and_retry_stamp_the_change(rows):
    # The dashboard counts deliveries settled in the last day by updated_at.
    from fedsx import delivery

    long_ago = timezone.now() - timedelta(days=2)
    Delivery.objects.update(updated_at=long_ago)
    assert delivery.cancel(Delivery.objects.filter(pk=rows["pending"].pk)) == 1
    assert delivery.retry(Delivery.objects.filter(pk=rows["failed"].pk)) == [rows["failed"].pk]
    stamped = dict(Delivery.objects.values_list("pk", "updated_at"))
    assert stamped[rows["pending"].pk] > timezone.now() - timedelta(minutes=1)
    assert stamped[rows["failed"].pk] > timezone.now() - timedelta(minutes=1)
    assert stamped[rows["held"].pk] == long_ago


def test_deliveries_cancel_refusals(rows):
    for status in (Status.DELIVERED, Status.FAILED, Status.CANCELLED):
        refused("deliveries", "cancel", str(rows[status].pk), match=rf"is {status}: only")
    refused("deliveries", "cancel", "999999", match=r"there is no delivery")


def test_deliveries_refusal_exits_non_zero(rows, capsys):
    from fedsx.management.commands.deliveries import Command

    with pytest.raises(SystemExit) as exited:
        Command().run_from_argv(["manage.py", "deliveries", "show", "999999"])
    assert exited.value.code == 1
    assert capsys.readouterr().err == "CommandError: there is no delivery '999999'\n"


def test_deliveries_of_a_post(demo, bob, note_file):
    posted = run("post", "--as", "demo", str(note_file))
    listed = run_json("deliveries", "list", "--activity", posted)
    assert [(d["status"], d["inbox"]) for d in listed] == [("pending", f"{REMOTE}/inbox")]


# ── hosts ──────────────────────────────────────────────────────────────────────────────


def test_hosts_list_shows_state_figures_and_counts(rows):
    later = timezone.now() + timedelta(minutes=5)
    Host.objects.filter(host="remote.example").update(
        state=Host.State.UNAVAILABLE,
        consecutive_failures=12,
        failing_days=7,
        retry_at=later,
        unavailable_since=timezone.now() - timedelta(days=1),
    )
    lines = run("hosts", "list").splitlines()
    assert lines[0] == "other.example  ok  failures 0  failing days 0  pending 0  held 0"
    assert lines[1].startswith("remote.example  unavailable  failures 12  failing days 7  retry at")
    assert "unavailable since" in lines[1] and lines[1].endswith("pending 1  held 1")
    data = run_json("hosts", "list", "--state", "unavailable")
    assert [(h["host"], h["held"], h["failing_days"]) for h in data] == [("remote.example", 1, 7)]
    assert run("hosts", "list", "--state", "open") == "no hosts"


def test_hosts_list_refuses_a_bad_state(rows):
    refused("hosts", "list", "--state", "down", match=r"--state must be one of ok, open")


def test_hosts_clear_releases_held_deliveries(rows):
    Host.objects.filter(host="remote.example").update(
        state=Host.State.OPEN, consecutive_failures=5, retry_at=timezone.now()
    )
    text = run("hosts", "clear", "remote.example")
    assert text == "remote.example cleared: 1 delivery released from holding"
    host = Host.objects.get(host="remote.example")
    assert (host.state, host.consecutive_failures, host.retry_at) == (Host.State.OK, 0, None)
    assert Delivery.objects.get(pk=rows["held"].pk).status == Status.PENDING
    data = run_json("hosts", "clear", "https://Remote.Example/")
    assert data == {"host": "remote.example", "state": "ok", "released": []}


def test_hosts_clear_refuses_an_unknown_host(rows):
    refused("hosts", "clear", "nowhere.example", match=r"^no host 'nowhere.example' is known")
    refused("hosts", "clear", "", match=r"^no host '' is known")
