"""Flows the trigger tests start (imported by the tests and by the e2e worker)."""

from flows import flow


@flow("test.done")
def done(ctx, input: dict) -> dict:
    return {"sender": input["actor"], "type": input["activity"].get("type")}


@flow("test.crash")
def crash(ctx, input: dict) -> dict:
    raise RuntimeError("this flow always crashes")


@flow("test.slow")
def slow(ctx, input: dict) -> dict:
    """Takes a while, so a test can kill a worker in the middle of a batch."""
    import time

    time.sleep(0.05)
    return {"slow": True}
