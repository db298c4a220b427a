"""The project's shipped flows."""

from __future__ import annotations

from typing import Any

from .registry import flow


@flow("approval")
def approval(ctx, input: dict) -> dict:
    """Hold a follow request for the operator (``flows resume ID --value true|false``), then
    answer it: ``Accept`` of the Follow for true, ``Reject`` for false.

    Started by a trigger its input is ``{"activity", "actor", "recipient", "trigger"}``.
    Given anything but a Follow to a local recipient it only waits and returns the answer.
    """
    approved = ctx.wait("approval")
    result: dict[str, Any] = {"approved": approved}
    if is_follow_request(input):
        answer = "Accept" if approved is True else "Reject"
        result["sent"] = ctx.send(answer_to(input, answer), actor=input["recipient"])
    return result


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
