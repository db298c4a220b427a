"""The named-flow registry: ``@flow("name")`` and what the store resolves names with.

Flows are registered when their module is imported; ``FlowsConfig.ready`` imports every
installed app's ``flows.py`` (as the admin does with ``admin.py``), so a flow defined there
is known in every process: web, worker and management commands alike.

This module holds plain Python state only and never touches the database, so
``from flows import flow`` is safe before the app registry is ready.
"""

from __future__ import annotations

import hashlib
import inspect
import logging
import marshal
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)

MAX_NAME_LENGTH = 200  # FlowInstance.flow_name / FlowDefinition.name

FlowFunction = Callable[[Any, dict], Any]


@dataclass(frozen=True)
class RegisteredFlow:
    name: str
    fn: FlowFunction
    import_path: str
    code_hash: str


_flows: dict[str, RegisteredFlow] = {}


def code_hash(fn: Callable) -> str:
    """sha256 of the function's source (its bytecode when the source is not available)."""
    try:
        data = textwrap.dedent(inspect.getsource(fn)).encode()
    except (OSError, TypeError):
        data = marshal.dumps(fn.__code__)
    return hashlib.sha256(data).hexdigest()


def import_path(fn: Callable) -> str:
    return f"{fn.__module__}.{fn.__qualname__}"


def register_flow(name: str, fn: FlowFunction) -> FlowFunction:
    """Register ``fn`` under ``name``; registering a name again replaces the old flow."""
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME_LENGTH:
        raise ValueError(f"a flow name is 1-{MAX_NAME_LENGTH} characters, got {name!r}")
    if not callable(fn):
        raise TypeError(f"flow {name!r} must be a function taking (ctx, input), got {fn!r}")
    entry = RegisteredFlow(name, fn, import_path(fn), code_hash(fn))
    old = _flows.get(name)
    if old is not None and old.import_path != entry.import_path:
        logger.warning("flow %r: %s replaces %s", name, entry.import_path, old.import_path)
    _flows[name] = entry
    return fn


def flow(name: str) -> Callable[[FlowFunction], FlowFunction]:
    """Decorator: ``@flow("approval")`` registers ``def approval(ctx, input)``."""

    def decorate(fn: FlowFunction) -> FlowFunction:
        return register_flow(name, fn)

    return decorate


def unregister_flow(name: str) -> None:
    _flows.pop(name, None)


def resolve_flow(name: str) -> FlowFunction | None:
    """The function registered under ``name``, or None."""
    entry = _flows.get(name) if isinstance(name, str) else None
    return entry.fn if entry else None


def registration(name: str) -> RegisteredFlow | None:
    """Name, function, import path and code hash of a registered flow, or None."""
    return _flows.get(name) if isinstance(name, str) else None


def registered_flows() -> list[str]:
    return sorted(_flows)
