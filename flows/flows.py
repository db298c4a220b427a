"""The project's example flows."""

from __future__ import annotations

from .registry import flow


@flow("approval")
def approval(ctx, input: dict) -> dict:
    """Wait for an operator's answer (``flows resume ID --value true``) and return it.

    Started by a trigger its input is ``{"activity", "actor", "recipient", "trigger"}``,
    but any JSON object will do: the flow only waits.
    """
    return {"approved": ctx.wait("approval")}
