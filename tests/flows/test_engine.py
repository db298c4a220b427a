"""The pure driver: no database, just functions and logs."""

from datetime import UTC, datetime

import pytest

from flows.engine import (
    Blocked,
    Crashed,
    Done,
    Entry,
    FlowSignal,
    Nondeterministic,
    Suspended,
    drive,
)


def approval(ctx, input):
    return {"approved": ctx.wait("approval")}


def test_a_flow_without_waits_is_done_at_once():
    result = drive(lambda ctx, input: input["n"] + 1, {"n": 1}, [])
    assert result == Done(2, ())


def test_suspend_then_resume():
    first = drive(approval, {}, [])
    assert first == Suspended("approval", ())
    second = drive(approval, {}, [Entry("wait", "approval", "yes")])
    assert second == Done({"approved": "yes"}, ())


def test_a_step_runs_once_across_ten_replays():
    calls = []

    def send(to):
        calls.append(to)
        return {"sent": to, "n": len(calls)}

    def flow(ctx, input):
        receipt = ctx.step("send", send, input["to"])
        answer = ctx.wait("reply")
        return {"receipt": receipt, "answer": answer}

    first = drive(flow, {"to": "bob"}, [])
    assert isinstance(first, Suspended) and first.tag == "reply"
    assert first.entries == (Entry("step", "send", {"sent": "bob", "n": 1}),)
    log = list(first.entries)
    for _ in range(10):
        again = drive(flow, {"to": "bob"}, log)
        assert again == Suspended("reply", ())
    done = drive(flow, {"to": "bob"}, [*log, Entry("wait", "reply", 42)])
    assert done == Done({"receipt": {"sent": "bob", "n": 1}, "answer": 42}, ())
    assert calls == ["bob"]


def test_now_is_logged_and_replayed():
    moments = iter([datetime(2026, 1, 2, 3, 4, 5, 678, tzinfo=UTC), datetime(2030, 1, 1)])

    def flow(ctx, input):
        t = ctx.now()
        ctx.wait("go")
        return t.isoformat()

    first = drive(flow, {}, [], clock=lambda: next(moments))
    assert first.entries == (Entry("now", "", "2026-01-02T03:04:05.000678+00:00"),)
    done = drive(flow, {}, [*first.entries, Entry("wait", "go", None)], clock=lambda: next(moments))
    assert done.value == "2026-01-02T03:04:05.000678+00:00"


def test_a_crashing_step_is_logged_and_crashes_the_instance():
    def boom():
        raise ValueError("no route to host")

    def flow(ctx, input):
        ctx.step("ok", lambda: 1)
        ctx.step("send", boom)
        return "unreachable"

    result = drive(flow, {}, [])
    assert isinstance(result, Crashed)
    assert result.error == "ValueError: no route to host (in step 'send')"
    assert "no route to host" in result.traceback and "Traceback" in result.traceback
    assert result.entries == (
        Entry("step", "ok", 1),
        Entry("error", "send", {"error": "ValueError: no route to host"}),
    )


def test_a_retried_crash_runs_the_failed_step_again_but_not_the_earlier_one():
    calls = {"ok": 0, "flaky": 0}

    def ok():
        calls["ok"] += 1
        return "ok"

    def flaky():
        calls["flaky"] += 1
        if calls["flaky"] == 1:
            raise OSError("down")
        return "up"

    def flow(ctx, input):
        return [ctx.step("ok", ok), ctx.step("flaky", flaky)]

    crashed = drive(flow, {}, [])
    assert isinstance(crashed, Crashed)
    retried = drive(flow, {}, list(crashed.entries))
    assert retried == Done(["ok", "up"], (Entry("step", "flaky", "up"),))
    assert calls == {"ok": 1, "flaky": 2}


def test_a_step_may_ask_for_retries_with_backoff():
    attempts, slept = [], []

    def flaky():
        attempts.append(1)
        if len(attempts) < 3:
            raise ConnectionError("try again")
        return "sent"

    def flow(ctx, input):
        return ctx.step("send", flaky, retries=3, backoff=0.5)

    assert drive(flow, {}, [], sleep=slept.append).value == "sent"
    assert slept == [0.5, 1.0]

    attempts.clear()
    slept.clear()
    result = drive(
        lambda ctx, i: ctx.step("send", flaky, retries=1, backoff=0.5), {}, [], sleep=slept.append
    )
    assert isinstance(result, Crashed)
    assert result.error == "ConnectionError: try again (in step 'send', after 2 attempts)"
    assert result.entries == (
        Entry("error", "send", {"error": "ConnectionError: try again", "attempts": 2}),
    )


def test_a_crashing_flow_body():
    def flow(ctx, input):
        ctx.step("one", lambda: 1)
        return input["missing"]

    result = drive(flow, {}, [])
    assert isinstance(result, Crashed)
    assert result.error == "KeyError: 'missing'"
    assert result.entries == (
        Entry("step", "one", 1),
        Entry("error", "", {"error": "KeyError: 'missing'"}),
    )


def test_nondeterminism_after_the_code_changes_names_position_and_both_names():
    def v1(ctx, input):
        ctx.step("fetch", lambda: 1)
        ctx.step("notify", lambda: 2)
        return ctx.wait("approval")

    def v2(ctx, input):
        ctx.step("fetch", lambda: 1)
        ctx.step("email", lambda: 2)  # renamed
        return ctx.wait("approval")

    log = list(drive(v1, {}, []).entries)
    result = drive(v2, {}, [*log, Entry("wait", "approval", True)])
    assert result == Nondeterministic(1, "step 'notify'", "step 'email'", ())
    assert result.detail == (
        "at log position 1 the log has step 'notify' but the flow asked for step 'email'"
    )


def test_a_wait_where_a_step_was_and_a_flow_that_ends_early_are_nondeterministic():
    log = [Entry("step", "fetch", 1), Entry("wait", "approval", True)]
    assert drive(approval, {}, log) == Nondeterministic(0, "step 'fetch'", "wait 'approval'")
    early = drive(lambda ctx, i: "done", {}, log)
    assert early == Nondeterministic(0, "step 'fetch'", "the end of the flow")


def test_error_entries_are_skipped_on_replay():
    log = [Entry("error", "send", {"error": "x"}), Entry("wait", "approval", 1)]
    assert drive(approval, {}, log).value == {"approved": 1}


def test_except_exception_cannot_swallow_the_suspension():
    def flow(ctx, input):
        try:
            ctx.wait("approval")
        except Exception:
            return "swallowed"
        return "answered"

    assert drive(flow, {}, []) == Suspended("approval", ())


def test_a_bare_except_that_swallows_the_suspension_gains_nothing():
    side_effects = []

    def flow(ctx, input):
        try:
            ctx.wait("approval")
        except BaseException:  # the bare swallow is the point of the test
            side_effects.append("swallowed")
        ctx.step("after", lambda: side_effects.append(1))
        return "went on"

    assert drive(flow, {}, []) == Suspended("approval", ())
    assert side_effects == ["swallowed"]  # but the step after it never ran
    assert issubclass(FlowSignal, BaseException) and not issubclass(FlowSignal, Exception)


def test_non_json_step_results_and_flow_results_crash_the_flow():
    result = drive(lambda ctx, i: ctx.step("when", lambda: datetime.now()), {}, [])
    assert isinstance(result, Crashed) and "is a datetime, not JSON" in result.error
    result = drive(lambda ctx, i: {1, 2}, {}, [])
    assert isinstance(result, Crashed) and "the flow's result is a set, not JSON" in result.error
    result = drive(lambda ctx, i: ctx.step("t", lambda: (1, 2)), {}, [])
    assert isinstance(result, Crashed) and "tuple" in result.error


def test_ctx_calls_inside_a_step_are_refused():
    def flow(ctx, input):
        return ctx.step("outer", lambda: ctx.wait("inner"))

    result = drive(flow, {}, [])
    assert isinstance(result, Crashed)
    assert "called inside a step's function" in result.error


@pytest.mark.parametrize("tag", ["", None, 3, "x" * 201])
def test_a_bad_tag_crashes_the_flow(tag):
    result = drive(lambda ctx, i: ctx.wait(tag), {}, [])
    assert isinstance(result, Crashed) and "wait tag" in result.error


def test_replay_only_drive_never_runs_a_new_step():
    ran = []

    def flow(ctx, input):
        ctx.step("new", lambda: ran.append(1))
        return ctx.wait("approval")

    assert drive(flow, {}, [], live=False) == Blocked("step", "new")
    assert drive(lambda ctx, i: ctx.now(), {}, [], live=False) == Blocked("now", "")
    assert ran == []


def test_a_base_exception_from_a_flow_is_its_crash_but_a_stop_request_is_not():
    import asyncio

    def cancelled(ctx, input):
        raise asyncio.CancelledError("cancelled")

    def interrupted(ctx, input):
        raise KeyboardInterrupt

    result = drive(cancelled, {})
    assert isinstance(result, Crashed)
    assert result.error == "CancelledError: cancelled"
    with pytest.raises(KeyboardInterrupt):
        drive(interrupted, {})


def test_a_crash_message_with_a_nul_is_stored_escaped():
    def nul(ctx, input):
        raise ValueError("before\x00after")

    result = drive(nul, {})
    assert result.error == "ValueError: before\\x00after"
    assert "\x00" not in result.traceback
    assert all("\x00" not in str(entry.value) for entry in result.entries)


def test_a_tag_with_a_nul_is_the_flows_crash_not_the_stores_failure():
    result = drive(lambda ctx, input: ctx.wait("a\x00b"), {})
    assert isinstance(result, Crashed)
    assert "U+0000" in result.error
    result = drive(lambda ctx, input: ctx.step("s\x00", lambda: 1), {})
    assert isinstance(result, Crashed)
