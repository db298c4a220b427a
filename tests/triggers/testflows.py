"""Flows the trigger tests start (imported by the tests and by the e2e worker)."""

from flows import flow


@flow("test.done")
def done(ctx, input: dict) -> dict:
    return {"sender": input["actor"], "type": input["activity"].get("type")}


@flow("test.crash")
def crash(ctx, input: dict) -> dict:
    raise RuntimeError("this flow always crashes")
