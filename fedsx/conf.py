"""The plugin's settings: one ``FEDSX`` dict in the host's settings, merged over defaults.

Read them as ``fedsx_settings.NAME``; values are looked up on every access so that
``override_settings(FEDSX=...)`` in tests and host projects takes effect at once.
"""

from __future__ import annotations

import os
from typing import Any

from django.conf import settings

DEFAULTS: dict[str, Any] = {
    # Public origin used in every id this node mints (actors, collections, keys).
    "BASE_URL": os.environ.get("FEDSX_BASE_URL", "http://127.0.0.1:8000").rstrip("/"),
    # Largest inbox body accepted; anything larger is answered 413 before parsing.
    "MAX_BODY_BYTES": 1024 * 1024,
    # Signature freshness window: how far in the future / in the past Date or created may be.
    "MAX_CLOCK_SKEW_SECONDS": 300,
    "MAX_SIGNATURE_AGE_SECONDS": 3600,
    # Outbound fetches of keys and actor documents.
    "FETCH_TIMEOUT_SECONDS": 5.0,
    "FETCH_MAX_BYTES": 1024 * 1024,
    "FETCH_MAX_REDIRECTS": 3,
    # A key that failed verification is refetched at most once per this many seconds.
    "KEY_REFETCH_INTERVAL_SECONDS": 300,
    # After failing to resolve or connect to a server (scheme, host, port), fetches from it
    # are not tried again for this long; its deliveries get 503 and Retry-After meanwhile.
    "FETCH_BACKOFF_SECONDS": 30,
    # Seconds a temporarily failing sender is told to wait (Retry-After on 503).
    "RETRY_AFTER_SECONDS": 60,
    # Hosts (host or host:port) that may be fetched although they resolve to internal addresses.
    "FETCH_ALLOWLIST": os.environ.get("FEDSX_FETCH_ALLOWLIST", ""),
    # Page size of outbox and collection pages.
    "COLLECTION_PAGE_SIZE": 20,
    # Enqueue trigger application after each committed inbox entry.
    "DISPATCH_TRIGGERS": True,
    # Entries whose triggers were not applied after this many seconds are re-enqueued.
    "SWEEP_AFTER_SECONDS": 60,
    # What NodeInfo says about this node.
    "NODE_NAME": "fedsx",
    "OPEN_REGISTRATIONS": False,
}


class FedsxSettings:
    """Attribute access to ``settings.FEDSX`` with ``DEFAULTS`` filled in."""

    def __getattr__(self, name: str) -> Any:
        if name not in DEFAULTS:
            raise AttributeError(f"unknown FEDSX setting {name!r}")
        return getattr(settings, "FEDSX", {}).get(name, DEFAULTS[name])


fedsx_settings = FedsxSettings()
