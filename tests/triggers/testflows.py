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


@flow("test.cancelled")
def cancelled(ctx, input: dict) -> dict:
    """Raises a BaseException that is not the process being stopped."""
    import asyncio

    raise asyncio.CancelledError("cancelled inside the flow")


@flow("test.nul_error")
def nul_error(ctx, input: dict) -> dict:
    raise ValueError("a message with a \x00 in it")


@flow("test.dangling_row")
def dangling_row(ctx, input: dict) -> dict:
    """A step writing a row whose foreign keys refer to nothing (checked only at commit)."""

    def write() -> bool:
        from django.db import connection

        nowhere = 2**40
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO fedsx_inboxentry (actor_id, activity_id, seq, created_at)"
                " VALUES (%s, %s, 1, now())",
                [nowhere, nowhere],
            )
        return True

    return {"wrote": ctx.step("write", write)}


@flow("test.sleep-then-slow")
def sleep_then_slow(ctx, input: dict) -> str:
    """Wakes into a slow step, so a test can kill the worker while it is waking."""
    import time

    ctx.sleep(input["seconds"])
    ctx.step("slow", time.sleep, input.get("slow", 4))
    return "woke"
