"""The side effects flows reach through ``ctx``: kept out of the pure driver, which only
hands them to the store's ``run_effect`` (a savepoint in the flow's transaction)."""

from __future__ import annotations

from typing import Any


def post_to_outbox(actor: str, activity: dict[str, Any]) -> str:
    """Post through the outbox as a local actor (its id or name); the minted id. Runs in
    the flow's transaction: a rolled-back step sends nothing."""
    from fedsx.outbox import post  # the kernel app; imported when a flow first sends

    return post(actor, activity).ap_id
