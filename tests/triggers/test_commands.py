import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from fedsx.models import InboxEntry
from triggers.models import Firing, Trigger

from .conftest import add_trigger, append, follow


def run(*args) -> str:
    out = StringIO()
    call_command("triggers", *args, stdout=out)
    return out.getvalue().strip()


def run_json(*args):
    return json.loads(run(*args, "--json"))


@pytest.mark.django_db
def test_add_then_list(demo):
    added = run_json("add", "--type", "Follow", "--flow", "approval", "--label", "approve")
    assert added["type"] == "Follow" and added["flow"] == "approval" and added["enabled"]
    assert added["trigger_cid"].startswith("b")
    text = run(
        "add",
        "--type",
        "Like",
        "--flow",
        "test.done",
        "--actor",
        "demo",
        "--sender",
        "remote.example",
        "--guard",
        "object != ''",
    )
    assert text.startswith("trigger ") and "Like to demo from remote.example" in text
    listed = run_json("list")
    assert [t["type"] for t in listed] == ["Follow", "Like"]
    assert listed[1]["actors"] == ["demo"] and listed[1]["senders"] == ["remote.example"]
    assert "approve" in run("list")


@pytest.mark.django_db
@pytest.mark.parametrize(
    "args, message",
    [
        (["--guard", "object.type =="], "invalid guard"),
        (["--guard", "nope(x)"], "unknown function"),
        (["--actor", "ghost"], "no local actor named ghost"),
        (["--flow", " "], "flow_name"),
        (["--guard", "(" * 3000 + "a" + ")" * 3000], "at most 4000 characters"),
        (["--guard", "(" * 1500 + "a" + ")" * 1500], "nests at most"),
    ],
)
def test_add_refuses_bad_input_and_stores_nothing(demo, args, message):
    base = ["add", "--type", "Follow", "--flow", "approval"]
    with pytest.raises(CommandError, match=message):
        run(*base, *args)
    assert not Trigger.objects.exists()


@pytest.mark.django_db
def test_add_refuses_a_duplicate_spec(demo):
    run("add", "--type", "Follow", "--flow", "approval", "--label", "one")
    with pytest.raises(CommandError, match="exactly this spec exists"):
        run("add", "--type", "Follow", "--flow", "approval", "--label", "two")
    assert Trigger.objects.count() == 1


@pytest.mark.django_db
def test_test_shows_scope_and_guard_verdicts(demo, tmp_path):
    trigger = add_trigger(guard="object == 'http://testserver/actors/demo'", actor_scope=["demo"])
    path = tmp_path / "follow.json"
    path.write_text(json.dumps(follow()))
    verdict = run_json("test", str(trigger.pk), "--activity", str(path))
    assert verdict["would_fire"] is True and verdict["guard_passes"] is True
    path.write_text(json.dumps(follow(target="http://testserver/actors/other")))
    verdict = run_json("test", str(trigger.pk), "--activity", str(path))
    assert verdict["guard_passes"] is False and verdict["would_fire"] is False
    assert verdict["type_matches"] and verdict["actor_in_scope"] and verdict["sender_in_scope"]
    text = run("test", str(trigger.pk), "--activity", str(path))
    assert "would fire" in text and text.splitlines()[-1].endswith("no")
    assert not Firing.objects.exists()


@pytest.mark.django_db
def test_test_reports_a_guard_error(demo, tmp_path):
    trigger = add_trigger(guard="contains(object, `1`)")
    path = tmp_path / "follow.json"
    path.write_text(json.dumps(follow()))
    assert "error:" in run("test", str(trigger.pk), "--activity", str(path))


@pytest.mark.django_db
@pytest.mark.parametrize("content, message", [("{nope", "not valid JSON"), ("[1]", "one activity")])
def test_test_refuses_a_bad_activity_file(demo, tmp_path, content, message):
    trigger = add_trigger()
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(CommandError, match=message):
        run("test", str(trigger.pk), "--activity", str(path))
    with pytest.raises(CommandError, match="cannot read"):
        run("test", str(trigger.pk), "--activity", str(tmp_path / "missing.json"))
    with pytest.raises(CommandError, match="no trigger 999"):
        run("test", "999", "--activity", str(path))


LOAD_YAML = """
- label: approve follows
  type: Follow
  flow: approval
- type: Create
  flow: test.done
  guard: "object.type == 'Note'"
  actors: [demo]
  senders: [remote.example]
"""


@pytest.mark.django_db
def test_load_twice_changes_nothing(demo, tmp_path):
    path = tmp_path / "triggers.yaml"
    path.write_text(LOAD_YAML)
    first = run_json("load", str(path))
    assert first["created"] == 2
    before = list(Trigger.objects.values_list("pk", "trigger_cid", "updated_at"))
    second = run_json("load", str(path))
    assert second == {"created": 0, "updated": 0, "unchanged": 2, "triggers": first["triggers"]}
    assert list(Trigger.objects.values_list("pk", "trigger_cid", "updated_at")) == before
    as_json = tmp_path / "triggers.json"
    as_json.write_text(json.dumps([{"type": "Follow", "flow": "approval", "label": "renamed"}]))
    assert run_json("load", str(as_json))["updated"] == 1
    assert Trigger.objects.get(activity_type="Follow").label == "renamed"


@pytest.mark.django_db
def test_a_json_listing_loads_back_unchanged(demo, tmp_path):
    path = tmp_path / "triggers.yaml"
    path.write_text(LOAD_YAML)
    run("load", str(path))
    listing = tmp_path / "listing.json"
    listing.write_text(run("list", "--json"))
    Trigger.objects.filter(activity_type="Follow").delete()
    assert run_json("load", str(listing)) | {"triggers": None} == {
        "created": 1,
        "updated": 0,
        "unchanged": 1,
        "triggers": None,
    }
    assert sorted(t["type"] for t in run_json("list")) == ["Create", "Follow"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "content, message",
    [
        ("- type: Follow\n  flow: approval\n- type: Like\n  flow: x\n  guard: 'a =='\n", "item 2"),
        ("- type: Follow\n  flow: approval\n  colour: red\n", "unknown key"),
        ("type: Follow\n", "must hold a list"),
        ("- [1, 2]\n", "a mapping"),
        ("- type: Follow\n  flow: approval\n  actors: 3\n", "item 1"),
        ("- {type: Follow, flow: approval, enabled: maybe}\n", "enabled"),
        ("- type: [\n", "not valid YAML"),
    ],
)
def test_load_is_all_or_nothing(demo, tmp_path, content, message):
    path = tmp_path / "triggers.yaml"
    path.write_text(content)
    with pytest.raises(CommandError, match=message):
        run("load", str(path))
    assert not Trigger.objects.exists()


@pytest.mark.django_db
def test_disable_and_enable(demo):
    trigger = add_trigger()
    assert run_json("disable", str(trigger.pk))["enabled"] is False
    assert Trigger.objects.get().enabled is False
    assert "enabled" in run("enable", str(trigger.pk))
    with pytest.raises(CommandError, match="no trigger 42"):
        run("disable", "42")


@pytest.mark.django_db
def test_sweep_applies_entries_left_behind(demo, settings):
    add_trigger()
    settings.FEDSX = {"BASE_URL": "http://testserver", "DISPATCH_TRIGGERS": False}
    entries = [append(demo, follow()) for _ in range(3)]
    assert run_json("sweep", "--older-than", "3600") == {"enqueued": 0}
    assert run_json("sweep", "--older-than", "0") == {"enqueued": 3}
    assert Firing.objects.count() == 3
    assert not InboxEntry.objects.filter(triggers_applied_at__isnull=True).exists()
    assert {f.inbox_entry_id for f in Firing.objects.all()} == {e.pk for e in entries}
    assert run("sweep", "--older-than", "0") == "0 entries re-enqueued"
    with pytest.raises(CommandError, match="zero or more"):
        run("sweep", "--older-than", "-1")


@pytest.mark.django_db
def test_apply_since_reruns_the_backlog_for_new_triggers(demo, capsys):
    for _ in range(4):
        append(demo, follow())
    add_trigger(flow_name="test.done")
    assert run_json("apply", "--since", "2000-01-01") == {"entries": 4, "firings": 4}
    assert run_json("apply", "--since", "2000-01-01T00:00") == {"entries": 4, "firings": 0}
    assert run("apply", "--since", "2999-01-01") == "0 entries, 0 new firings"
    with pytest.raises(CommandError, match="is not a date"):
        run("apply", "--since", "yesterday")
    for impossible in ("2024-02-30", "2024-01-01T25:00", "2024-13-01T00:00"):
        with pytest.raises(CommandError, match="is not a valid date"):
            run("apply", "--since", impossible)


@pytest.mark.django_db
def test_apply_shows_a_progress_bar(demo, capsys):
    append(demo, follow())
    run("apply", "--since", "2000-01-01")
    assert "[##############################] 1/1" in capsys.readouterr().err
