"""``manage.py flows <verb>``: every verb, with bad input."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from flows import flow, store
from flows.models import FlowDefinition, FlowInstance

pytestmark = pytest.mark.django_db


def run(*args):
    out = StringIO()
    call_command("flows", *args, stdout=out)
    return out.getvalue().strip()


def run_json(*args):
    return json.loads(run(*args, "--json"))


def fails(*args, match):
    out = StringIO()
    with pytest.raises(CommandError, match=match) as caught:
        call_command("flows", *args, stdout=out)
    assert "\n" not in str(caught.value)
    return out.getvalue().strip()


def test_start_status_resume_instances_walkthrough():
    text = run("start", "approval", "--input", '{"actor": "alice"}')
    first = FlowInstance.objects.get(input={"actor": "alice"}).pk
    assert text == f"instance {first}: suspended - waiting on 'approval'"
    started = run_json("start", "approval", "--input", '{"actor": "bob"}')
    pk = started["id"]
    assert started == {
        "id": pk,
        "status": "suspended",
        "value": None,
        "tag": "approval",
        "error": None,
        "detail": "waiting on 'approval'",
    }
    assert f"instance {pk} of 'approval': suspended" in run("status", str(pk))
    assert run("resume", str(pk), "--value", "true") == f'instance {pk}: done {{"approved": true}}'
    status = run_json("status", str(pk), "--log")
    assert status["status"] == "done" and status["value"] == {"approved": True}
    assert [(e["seq"], e["kind"], e["tag"], e["value"]) for e in status["log"]] == [
        (0, "wait", "approval", True)
    ]
    listed = run_json("instances", "--status", "done")
    assert [r["id"] for r in listed] == [pk]
    assert [r["id"] for r in run_json("instances", "--status", "suspended")] == [first]
    text = run("instances", "--flow", "approval")
    assert f"{pk}  approval  done" in text and "suspended on 'approval'" in text


def test_input_and_value_from_a_file(tmp_path):
    path = tmp_path / "input.json"
    path.write_text('{"from": "file"}')
    pk = run_json("start", "approval", "--input", f"@{path}")["id"]
    assert FlowInstance.objects.get(pk=pk).input == {"from": "file"}
    path.write_text('"yes"')
    assert run_json("resume", str(pk), "--value", f"@{path}")["value"] == {"approved": "yes"}
    fails("start", "approval", "--input", f"@{tmp_path}/missing.json", match="cannot read --input")


def test_bad_input_is_a_one_line_error_and_changes_nothing():
    fails("start", "nope", match="no flow is registered as 'nope'")
    fails("start", "approval", "--input", "{bad", match="--input is not valid JSON")
    fails("start", "approval", "--input", "[1]", match="must be a JSON object, not a list")
    fails("start", "approval", "--input", '{"x": NaN}', match="NaN is not JSON")
    assert not FlowInstance.objects.exists()
    pk = run_json("start", "approval")["id"]
    fails("resume", str(pk), "--value", "{bad", match="--value is not valid JSON")
    for verb in ("resume", "status", "cancel", "retry"):
        extra = ["--value", "1"] if verb == "resume" else []
        fails(verb, "abc", *extra, match="there is no flow instance 'abc'")
        fails(verb, "987654", *extra, match="there is no flow instance '987654'")
    fails("instances", "--status", "bogus", match="--status must be one of")
    fails("instances", "--limit", "0", match="--limit must be between 1 and 10000")
    assert FlowInstance.objects.get().log_length == 0


def test_json_errors_go_to_stdout_too():
    out = fails("start", "nope", "--json", match="no flow")
    assert json.loads(out) == {"error": "no_such_flow", "detail": "no flow is registered as 'nope'"}


def test_cancel_and_retry():
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) == 1:
            raise OSError("down")
        return "up"

    @flow("test-cmd-flaky")
    def flaky_flow(ctx, input):
        return ctx.step("call", flaky)

    out = fails("start", "test-cmd-flaky", match="OSError: down")
    assert "crashed - OSError: down (in step 'call')" in out
    pk = FlowInstance.objects.get(flow_name="test-cmd-flaky").pk
    assert run("retry", str(pk)) == f'instance {pk}: done "up"'
    fails("retry", str(pk), match="already done")
    fails("cancel", str(pk), match="already done")

    waiting = run_json("start", "approval")["id"]
    assert run_json("cancel", str(waiting))["status"] == "cancelled"
    fails("resume", str(waiting), "--value", "1", match="was cancelled")
    fails("cancel", str(waiting), match="already cancelled")


def test_register_and_list_report_added_changed_and_removed_flows():
    FlowDefinition.objects.create(name="gone", import_path="old.gone", code_hash="0" * 64)
    report = run_json("register")
    assert "approval" in report["added"] and report["removed"] == ["gone"]
    assert not FlowDefinition.objects.filter(name="gone").exists()
    assert run("register").startswith("no changes")
    assert "approval  flows.flows.approval" in run("list")
    assert {"name": "approval", "definition": "synced"}.items() <= run_json("list")[0].items()

    @flow("test-cmd-changing")
    def v1(ctx, input):
        return ctx.wait("x")

    assert run("register") == "added: test-cmd-changing"
    run("start", "test-cmd-changing")

    @flow("test-cmd-changing")
    def v2(ctx, input):
        return ctx.wait("y")

    listed = {r["name"]: r for r in run_json("list")}
    assert listed["test-cmd-changing"]["definition"] == "changed since the last register"
    assert run("register") == (
        "changed: test-cmd-changing (1 suspended instances started under the old code)"
    )
    assert FlowDefinition.objects.get(name="test-cmd-changing").code_hash == (
        store.registration("test-cmd-changing").code_hash
    )


def test_replay_reports_instances_that_would_be_nondeterministic():
    @flow("test-cmd-replay")
    def v1(ctx, input):
        return ctx.wait("approval")

    good = run_json("start", "approval")["id"]
    bad = run_json("start", "test-cmd-replay")["id"]
    assert run("replay").endswith("2 suspended instances replayed, 0 would be non-deterministic")

    @flow("test-cmd-replay")
    def v2(ctx, input):
        ctx.step("new", lambda: 1)
        return ctx.wait("approval")

    out = fails("replay", "--json", match="1 suspended instances would be non-deterministic")
    checks = {c["instance_id"]: c for c in json.loads(out)}
    assert checks[good]["ok"] and not checks[bad]["ok"]
    assert "now asks for step 'new'" in checks[bad]["detail"]
    assert FlowInstance.objects.get(pk=bad).log_length == 0  # nothing was written


@pytest.mark.django_db
def test_register_flows_is_the_design_name_of_flows_register():
    out = StringIO()
    call_command("register_flows", stdout=out)
    assert FlowDefinition.objects.filter(name="approval").exists()
    assert "added: approval" in out.getvalue()


@pytest.mark.parametrize("verb", ["status", "resume", "cancel", "retry"])
@pytest.mark.parametrize("text", ["²", "١٢", "99999999999999999999", "-1"])
def test_an_id_that_is_not_plain_digits_is_a_one_line_error(verb, text):
    extra = ["--value", "true"] if verb == "resume" else []
    fails(verb, text, *extra, match="there is no flow instance")


@pytest.mark.parametrize("limit", ["0", "99999999999999999999", "10001"])
def test_instances_limit_is_bounded(limit):
    store.start("approval", {})
    fails("instances", "--limit", limit, match="--limit must be between 1 and 10000")
    assert len(run_json("instances", "--limit", "10000")) == 1


def test_resume_with_tag_answers_only_that_wait():
    pk = run_json("start", "approval")["id"]
    fails("resume", str(pk), "--value", "true", "--tag", "payment", match="not on 'payment'")
    assert FlowInstance.objects.get(pk=pk).status == "suspended"
    done = run("resume", str(pk), "--value", "true", "--tag", "approval")
    assert done == f'instance {pk}: done {{"approved": true}}'


def test_waiting_kinds_wake_and_time_left():
    timer = run_json("start", "timer", "--input", '{"seconds": 3600}')["id"]
    operator = run_json("start", "approval")["id"]
    assert [r["id"] for r in run_json("instances", "--waiting", "timer")] == [timer]
    assert [r["id"] for r in run_json("instances", "--waiting", "operator")] == [operator]
    assert run_json("instances", "--waiting", "activity") == []
    assert "sleeping until" in run("status", str(timer)) and "s left)" in run("status", str(timer))
    fails("instances", "--waiting", "sleep", match="--waiting must be one of")
    woke = run_json("wake", str(timer))
    assert woke["status"] == "done" and set(woke["value"]) == {"due", "woke"}
    fails("wake", str(timer), match="already done")
    assert run_json("wake", str(operator))["value"]["outcome"] == "expired"  # its deadline, now
    flow("test.forever")(lambda ctx, input: ctx.wait("go"))
    forever = run_json("start", "test.forever")["id"]
    fails("wake", str(forever), match="has no timer")
    assert FlowInstance.objects.get(pk=forever).status == "suspended"  # unchanged
    fails("wake", "999999", match="no flow instance")
