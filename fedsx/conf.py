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
    # A key that failed verification is refetched at once (a rotated key), at most once
    # per this many seconds per key.
    "KEY_REFETCH_INTERVAL_SECONDS": 10,
    # Key fetches per host: a token bucket, so ever-new keyIds cannot make us hammer one
    # server; past it a delivery gets 503 with Retry-After.
    "KEY_FETCHES_PER_HOST_PER_MINUTE": 60,
    "KEY_FETCH_BURST": 20,
    # After failing to resolve or connect to a server (scheme, host, port), fetches from it
    # are not tried again for this long; its deliveries get 503 and Retry-After meanwhile.
    "FETCH_BACKOFF_SECONDS": 30,
    # Seconds a temporarily failing sender is told to wait (Retry-After on 503).
    "RETRY_AFTER_SECONDS": 60,
    # Hosts (host or host:port) that may be fetched although they resolve to internal addresses.
    "FETCH_ALLOWLIST": os.environ.get("FEDSX_FETCH_ALLOWLIST", ""),
    # Authorized fetch (fedsx/permissions.py): GETs of posted activities and objects and of
    # collections need a valid HTTP signature from a server that is not blocked; actor
    # documents answer unsigned requests with a minimal form (id, inbox, keys).
    "AUTHORIZED_FETCH": False,
    # Page size of outbox and collection pages.
    "COLLECTION_PAGE_SIZE": 20,
    # Enqueue trigger application after each committed inbox entry.
    "DISPATCH_TRIGGERS": True,
    # Entries whose triggers were not applied after this many seconds are re-enqueued.
    "SWEEP_AFTER_SECONDS": 60,
    # Deliveries (fedsx/retry.py): attempts before a delivery expires; 16 spread over about
    # two days, as Mastodon's (the schedule and its figures are in fedsx/retry.py).
    "DELIVERY_MAX_ATTEMPTS": 16,
    # A server's Retry-After is honoured up to this many seconds.
    "DELIVERY_RETRY_AFTER_CAP_SECONDS": 6 * 3600,
    # Timeout of one delivery POST, in seconds.
    "DELIVERY_TIMEOUT_SECONDS": 10.0,
    # What NodeInfo says about this node.
    "NODE_NAME": "fedsx",
    "OPEN_REGISTRATIONS": False,
    # Delivery (fedsx/delivery.py): threads sending at once per batch, and at most this many
    # at once to one host, so a large server is not hammered and a slow one stalls no other.
    "DELIVERY_CONCURRENCY": 16,
    "DELIVERY_HOST_CONCURRENCY": 4,
    # Deliveries per task, and how often (seconds) due retries are handed out (celery beat,
    # or the embedded node's ticker); at most DELIVERY_SWEEP_MAX per sweep.
    "DELIVERY_BATCH": 200,
    "DELIVERY_SWEEP_SECONDS": 2.0,
    "DELIVERY_SWEEP_MAX": 5000,
    # Host health (fedsx/hosts.py): the breaker opens after this many consecutive
    # connection failures, timeouts or 5xx, holds the host's deliveries and sends one probe
    # after the cool-off; a host failing on this many distinct days is unavailable, probed
    # once per UNAVAILABLE_PROBE_SECONDS.
    "BREAKER_THRESHOLD": 5,
    "BREAKER_COOLOFF_SECONDS": 60,
    "HOST_UNAVAILABLE_AFTER_DAYS": 7,
    "UNAVAILABLE_PROBE_SECONDS": 3600,
    # With no broker (the embedded node), run deliveries on a background thread of the
    # serving process and sweep retries and timers from a ticker thread (fedsx/jobs.py);
    # with a broker too, that ticker runs each serving process's chores (the tally flush).
    # Off only where something else drives the work (the test suite calls it directly).
    "JOBS_IN_PROCESS_THREADS": True,
    # Flows (flows/waits.py): how often (seconds) due timers are woken (celery beat's
    # flows-wake entry, or the embedded node's ticker), and at most how many per tick.
    "FLOW_TICK_SECONDS": 1.0,
    "FLOW_WAKE_MAX": 1000,
    # The shipped flows: how long approval waits for the operator, and follow for the
    # remote Accept or Reject, in seconds (manage.py follow --timeout overrides it).
    "APPROVAL_TIMEOUT_SECONDS": 7 * 86400,
    "FOLLOW_TIMEOUT_SECONDS": 7 * 86400,
    # Metrics (fedsx/metrics, README "Metrics"): record them (False: every recording
    # function returns at once); the bearer token that lets a non-loopback client read
    # /metrics ("" lets loopback clients only); how many held hosts get a series of their own.
    "METRICS": True,
    "METRICS_TOKEN": os.environ.get("FEDSX_METRICS_TOKEN", ""),
    "METRICS_TOP_HOSTS": 10,
}


class FedsxSettings:
    """Attribute access to ``settings.FEDSX`` with ``DEFAULTS`` filled in."""

    def __getattr__(self, name: str) -> Any:
        if name not in DEFAULTS:
            raise AttributeError(f"unknown FEDSX setting {name!r}")
        return getattr(settings, "FEDSX", {}).get(name, DEFAULTS[name])


fedsx_settings = FedsxSettings()
