"""Durable, replayable flows.

    from flows import flow

    @flow("approval")
    def approval(ctx, input):
        return {"approved": ctx.wait("approval")}

The driver is in ``flows.engine``, the database side in ``flows.store``.
"""

from .registry import flow

__all__ = ["flow"]
