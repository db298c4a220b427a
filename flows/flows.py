"""The project's shipped flows."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from .registry import flow


@flow("approval")
def approval(ctx, input: dict) -> dict:
    """Hold a follow request for the operator (``flows resume ID --value true|false``), then
    answer it: ``Accept`` of the Follow for true, ``Reject`` for false.

    The operator has ``APPROVAL_TIMEOUT_SECONDS`` (7 days by default; ``input["timeout"]``
    for one instance). Unanswered by then the flow ends as ``expired`` and sends nothing:
    the request stays pending (the follower sees it unanswered, as on Mastodon), and the
    operator can still accept it from the admin with a new flow or ``manage.py post``.

    Started by a trigger its input is ``{"activity", "actor", "recipient", "trigger"}``.
    Given anything but a Follow to a local recipient it only waits and returns the answer.
    """
    timeout = input.get("timeout") if isinstance(input, dict) else None
    approved = ctx.wait(
        "approval", timeout=timeout or _setting("APPROVAL_TIMEOUT_SECONDS"), default=EXPIRED
    )
    if approved == EXPIRED:
        return {"outcome": "expired", "approved": None}
    result: dict[str, Any] = {"approved": approved}
    if is_follow_request(input):
        answer = "Accept" if approved is True else "Reject"
        result["outcome"] = "accepted" if approved is True else "rejected"
        result["sent"] = ctx.send(answer_to(input, answer), actor=input["recipient"])
    return result


EXPIRED = "__expired__"  # what approval's wait gives back when the operator never answered


def _setting(name: str) -> Any:
    from fedsx.conf import fedsx_settings

    return getattr(fedsx_settings, name)


@flow("follow")
def follow(ctx, input: dict) -> dict:
    """Follow a remote (or local) actor and wait for the answer: what ``manage.py follow``
    starts. Input ``{"actor": local actor id or name, "target": its id, "timeout": s}``.

    Sends the Follow, then receives the Accept or Reject whose object is that Follow (by
    id or embedded) from the target; ends ``accepted``, ``rejected`` or ``timed_out``
    (``FOLLOW_TIMEOUT_SECONDS`` by default; the Follow stays pending then)."""
    target = input["target"]
    sent = ctx.send({"type": "Follow", "object": target, "to": [target]}, actor=input["actor"])
    answer = ctx.receive(
        {"type": ["Accept", "Reject"], "object": sent, "actor": target},
        timeout=input.get("timeout") or _setting("FOLLOW_TIMEOUT_SECONDS"),
    )
    if answer is None:
        return {"outcome": "timed_out", "follow": sent}
    outcome = "accepted" if answer.get("type") == "Accept" else "rejected"
    return {"outcome": outcome, "follow": sent, "answer": answer.get("id")}


@flow("timer")
def timer(ctx, input: dict) -> dict:
    """Sleep ``input["seconds"]`` on a durable timer and end with when it was due and when
    it woke: ``flows start timer --input '{"seconds": 30}'`` shows the timers work."""
    seconds = input.get("seconds") if isinstance(input, dict) else None
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
        return {"error": 'give {"seconds": N} with N >= 0'}
    due = ctx.now() + timedelta(seconds=seconds)
    ctx.sleep(due)
    return {"due": due.isoformat(), "woke": ctx.now().isoformat()}


@flow("question")
def question(ctx, input: dict) -> dict:
    """Ask a poll and tally it: post a Question with ``input["options"]`` (``oneOf``)
    closing after ``input["seconds"]``, collect the votes (a Create of a Note with
    ``inReplyTo`` the Question and ``name`` an option; one vote per voter, the first
    counts) until it closes, then post the tally as an Update of the Question."""
    actor, options = input["actor"], list(input["options"])
    closes = ctx.now() + timedelta(seconds=input.get("seconds", 3600))
    audience = input.get("to") or ["https://www.w3.org/ns/activitystreams#Public"]
    asked = {
        "type": "Question",
        "content": input.get("content", ""),
        "oneOf": [{"type": "Note", "name": name} for name in options],
        "endTime": closes.isoformat().replace("+00:00", "Z"),
        "to": audience,
    }
    create_id = ctx.send(asked, actor=actor)
    question_id = ctx.step("question id", _object_of, create_id)
    votes: dict[str, str] = {}
    while True:
        vote = ctx.receive({"type": "Create", "inReplyTo": question_id}, timeout=closes)
        if vote is None:
            break
        note, voter = vote.get("object") or {}, vote.get("actor")
        name = note.get("name") if isinstance(note, dict) else None
        if name in options and isinstance(voter, str) and voter not in votes:
            votes[voter] = name
    tally = {name: sum(1 for chosen in votes.values() if chosen == name) for name in options}
    updated = {
        **asked,
        "id": question_id,
        "oneOf": [
            {"type": "Note", "name": name, "replies": {"type": "Collection", "totalItems": count}}
            for name, count in tally.items()
        ],
        "closed": closes.isoformat().replace("+00:00", "Z"),
    }
    ctx.send({"type": "Update", "object": updated, "to": audience}, actor=actor)
    return {"question": question_id, "tally": tally, "voters": len(votes)}


def _object_of(activity_id: str) -> str:
    from fedsx.models import Activity

    return Activity.objects.get(ap_id=activity_id).object_id


@flow("auto_accept")
def auto_accept(ctx, input: dict) -> dict:
    """Accept a follow request at once (a trigger on Follow starts it)."""
    if not is_follow_request(input):
        return {"accepted": False, "detail": "not a Follow to a local actor"}
    return {
        "accepted": True,
        "sent": ctx.send(answer_to(input, "Accept"), actor=input["recipient"]),
    }


def is_follow_request(input: Any) -> bool:
    return (
        isinstance(input, dict)
        and isinstance(input.get("activity"), dict)
        and input["activity"].get("type") == "Follow"
        and isinstance(input.get("recipient"), str)
        and isinstance(input.get("actor"), str)
    )


def answer_to(input: dict, kind: str) -> dict:
    """An Accept or Reject of the Follow, embedded as Mastodon sends it (some servers do not
    dereference an id they are given), addressed to the follower."""
    return {"type": kind, "object": input["activity"], "to": [input["actor"]]}
