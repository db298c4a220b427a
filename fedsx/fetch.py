"""Fetching remote ActivityPub documents (actors, keys, WebFinger) safely: ``fetch_json``.

Every fetch goes through the guarded client (``fedsx.client.get``: the SSRF check where the
connection is made, pooled connections, signed as the instance actor) and is bounded here:
one deadline for the whole fetch, a size cap, and redirects followed a few times on the
host first asked, each hop a request of its own through the same guard. A keyId is chosen
by whoever sends us a request, so none of this may be left to the server we ask.
"""

from __future__ import annotations

import threading
import time
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
import orjson

from . import client, media
from .client import ConnectFailed, FetchError
from .conf import fedsx_settings
from .models import host_of

__all__ = ["ACCEPT", "FetchError", "connection_point", "fetch_json", "forget_unreachable"]

ACCEPT = f"{media.ACTIVITY_JSON}, {media.LD_JSON_AS}"

# Where a connection could not be made lately: (scheme, host as written, port) → until when
# it is not tried again. A dead or unresolvable server then costs one attempt (up to
# FETCH_TIMEOUT_SECONDS of a web worker) per FETCH_BACKOFF_SECONDS, not one per request
# naming it. Only connection failures count, and only for exactly where the connection went:
# an HTTP error or a slow answer concerns the path a sender chose, and a sender must not be
# able to make us stop fetching from a host that answers everyone else.
_unreachable: dict[tuple[str, str, int], float] = {}
_unreachable_lock = threading.Lock()
UNREACHABLE_MAX_ENTRIES = 10_000


def connection_point(url: str) -> tuple[str, str, int]:
    """(scheme, lower-case host as written, port) a fetch of ``url`` connects to; raises
    ValueError for a URL that has none (a bad port)."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return parts.scheme, (parts.hostname or "").lower(), port


def _connect_key(url: str) -> tuple[str, str, int] | None:
    try:
        return connection_point(url)
    except ValueError:
        return None


def _refuse_if_recently_unreachable(key: tuple[str, str, int] | None) -> None:
    until = _unreachable.get(key) if key else None
    if until is not None and time.monotonic() < until:
        raise FetchError(
            "unreachable", f"{key[1]} could not be reached moments ago", temporary=True
        )


def _mark_unreachable(key: tuple[str, str, int] | None) -> None:
    if key is None:
        return
    with _unreachable_lock:
        if len(_unreachable) >= UNREACHABLE_MAX_ENTRIES:
            _unreachable.clear()
        _unreachable[key] = time.monotonic() + fedsx_settings.FETCH_BACKOFF_SECONDS


def forget_unreachable() -> None:
    with _unreachable_lock:
        _unreachable.clear()


def fetch_json(url: str) -> dict[str, Any]:
    """GET an ActivityPub document; raises FetchError (temporary, gone or permanent).

    The whole fetch, redirects included, has FETCH_TIMEOUT_SECONDS; redirects may not leave
    the host first asked: a document is only believed about its own host.
    """
    deadline = time.monotonic() + fedsx_settings.FETCH_TIMEOUT_SECONDS
    origin = host_of(url)
    for _ in range(fedsx_settings.FETCH_MAX_REDIRECTS + 1):
        if host_of(url) != origin:
            raise FetchError("refused_url", "a redirect to another host is not followed")
        where = _connect_key(url)
        _refuse_if_recently_unreachable(where)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise FetchError("timeout", "the document took too long", temporary=True)
        try:
            with client.get(url, accept=ACCEPT, timeout=remaining) as response:
                if response.is_redirect and "location" in response.headers:
                    url = urljoin(url, response.headers["location"])
                    continue
                _raise_for_status(response)
                body = _read_capped(response, fedsx_settings.FETCH_MAX_BYTES, deadline)
        except ConnectFailed:
            _mark_unreachable(where)
            raise
        return _parse_document(body)
    raise FetchError("too_many_redirects", "too many redirects")


def _read_capped(response: httpx.Response, limit: int, deadline: float) -> bytes:
    declared = response.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise FetchError("too_large", f"document larger than {limit} bytes")
    chunks, size = [], 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > limit:
            raise FetchError("too_large", f"document larger than {limit} bytes")
        if time.monotonic() > deadline:  # a server dripping bytes must not hold us
            raise FetchError("timeout", "the document took too long", temporary=True)
        chunks.append(chunk)
    return b"".join(chunks)


def _raise_for_status(response: httpx.Response) -> None:
    code = response.status_code
    if code == 200:
        return
    if code in (404, 410):
        raise FetchError("gone", f"the document is gone ({code})", gone=True)
    if code == 429 or code >= 500:
        raise FetchError("remote_error", f"remote answered {code}", temporary=True)
    raise FetchError("remote_refused", f"remote answered {code}")


def _parse_document(body: bytes) -> dict[str, Any]:
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise FetchError("bad_document", "the document is not JSON") from None
    if not isinstance(document, dict):
        raise FetchError("bad_document", "the document is not a JSON object")
    return document
