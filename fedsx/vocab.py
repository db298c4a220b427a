"""ActivityStreams vocabulary the kernel, the inbox and the outbox share: references,
addressing and the public collection."""

from __future__ import annotations

from typing import Any

from .media import PUBLIC

ADDRESS_FIELDS = ("to", "cc", "bto", "bcc", "audience")
# Fields a sender uses to address privately: never delivered with the activity.
BLIND_FIELDS = ("bto", "bcc")
# The special collection "everyone"; peers write it in all three forms.
PUBLIC_ALIASES = frozenset({PUBLIC, "as:Public", "Public"})


def id_of(value: Any) -> str:
    """The id of an ActivityStreams reference: a string, or an object's ``id``."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("id"), str):
        return value["id"]
    return ""


def as_list(value: Any) -> list:
    """A member that may hold one value or a list of them, as a list (JSON-LD allows both)."""
    return value if isinstance(value, list) else [value]


def ids_in(value: Any) -> list[str]:
    """The ids of a reference or a list of references, in order, without the empty ones."""
    return [ref for item in as_list(value) if (ref := id_of(item))]


def addressed_ids(activity: dict[str, Any]) -> set[str]:
    """Every id named in an activity's addressing fields."""
    ids: set[str] = set()
    for field in ADDRESS_FIELDS:
        ids.update(ids_in(activity.get(field)))
    return ids


def is_public(activity: dict[str, Any]) -> bool:
    """Is the public collection among the activity's ``to``, ``cc`` or ``audience``?"""
    return bool(addressed_ids(activity) & PUBLIC_ALIASES)
