"""Domain blocks as the inbox sees them: a per-process set, refreshed every few seconds.

The inbox asks on every request, so the set is kept in memory rather than queried each
time; a change made in this process applies at once, in other processes within
``REFRESH_SECONDS``.
"""

from __future__ import annotations

import threading
import time

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from .models import DomainBlock

REFRESH_SECONDS = 10.0

_lock = threading.Lock()
_blocked: frozenset[str] = frozenset()
_loaded_at = float("-inf")


def _domain_of(host: str) -> str:
    host = host.lower()
    if host.startswith("["):  # [v6]:port
        return host.split("]")[0] + "]"
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def blocked_domains() -> frozenset[str]:
    global _blocked, _loaded_at
    if time.monotonic() - _loaded_at > REFRESH_SECONDS:
        with _lock:
            _blocked = frozenset(DomainBlock.objects.values_list("domain", flat=True))
            _loaded_at = time.monotonic()
    return _blocked


def is_blocked(host: str) -> bool:
    """Is ``host`` (or a parent domain of it) blocked? A port is ignored."""
    blocked = blocked_domains()
    if not blocked or not host:
        return False
    parts = _domain_of(host).rstrip(".").split(".")
    return any(".".join(parts[i:]) in blocked for i in range(len(parts)))


@receiver([post_save, post_delete], sender=DomainBlock)
def _invalidate(**kwargs) -> None:
    global _loaded_at
    _loaded_at = float("-inf")
