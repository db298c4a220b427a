"""The guarded HTTP client for every outbound request: deliveries, and the documents
(actors, keys, WebFinger) the node fetches.

The address is checked where the connection is made: a network backend for httpcore
resolves the host, refuses loopback, private, link-local, reserved and metadata addresses
(``fetch.is_internal``) unless the host is in ``FETCH_ALLOWLIST``, and connects to the very
address it checked. So a DNS answer that changes between a check and the connect cannot
reach an internal address, and connections are still pooled by host name, with TLS
checked against the name as usual. One pooled client per process (thread-safe; made anew
after a fork): a delivery to a server that was just delivered to reuses its connection.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Mapping
from dataclasses import dataclass

import httpcore
import httpx

from . import __version__
from .conf import fedsx_settings
from .fetch import FetchError, allowlist, is_internal

MAX_ANSWER_BYTES = 64 * 1024  # of a delivery's answer: only the status matters
POOL_CONNECTIONS = 200
KEEPALIVE_CONNECTIONS = 100


def user_agent() -> str:
    return f"fedsx/{__version__} (+{fedsx_settings.BASE_URL})"


@dataclass(frozen=True)
class Answer:
    status: int
    headers: httpx.Headers
    body: bytes


class RefusedAddress(httpcore.ConnectError):
    """Raised inside httpcore when a host resolves to an address we do not connect to."""


class GuardedBackend(httpcore.SyncBackend):
    """Connects only to addresses that pass the SSRF check, and to the one checked."""

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        address = checked_address(host, port)
        return super().connect_tcp(address, port, timeout, local_address, socket_options)


def checked_address(host: str, port: int) -> str:
    host = host.strip("[]").lower()
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise httpcore.ConnectError(f"cannot resolve {host}") from exc
    addresses = [info[4][0] for info in infos]
    allowed = allowlist()
    if host in allowed or f"{host}:{port}" in allowed:
        return addresses[0]
    if any(is_internal(address) for address in addresses):
        raise RefusedAddress(f"{host} resolves to an internal address")
    return addresses[0]


_client: httpx.Client | None = None
_client_pid = 0
_client_lock = threading.Lock()


def pooled() -> httpx.Client:
    """This process's pooled client."""
    global _client, _client_pid
    if _client is None or _client_pid != os.getpid():
        with _client_lock:
            if _client is None or _client_pid != os.getpid():
                _client = httpx.Client(
                    transport=_guarded_transport(),
                    follow_redirects=False,
                    trust_env=False,
                    headers={"User-Agent": user_agent()},
                )
                _client_pid = os.getpid()
    return _client


def _guarded_transport() -> httpx.HTTPTransport:
    transport = httpx.HTTPTransport(trust_env=False)
    limits = httpx.Limits(
        max_connections=POOL_CONNECTIONS, max_keepalive_connections=KEEPALIVE_CONNECTIONS
    )
    # httpx builds its httpcore pool without a way to name the network backend: the pool
    # is replaced by one with the same settings and ours.
    transport._pool = httpcore.ConnectionPool(
        ssl_context=httpx.create_ssl_context(),
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        network_backend=GuardedBackend(),
    )
    return transport


def reset() -> None:
    """Close the pooled connections (tests; settings that change the allowlist)."""
    global _client
    with _client_lock:
        if _client is not None:
            _client.close()
        _client = None


def _check_url(url: str) -> None:
    try:
        parts = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError):
        raise FetchError("refused_url", "not a valid URL") from None
    if parts.scheme not in {"http", "https"} or not parts.host:
        raise FetchError("refused_url", "only http(s) URLs with a host are fetched")
    if parts.userinfo:
        raise FetchError("refused_url", "URLs with credentials are not fetched")


def post(
    url: str, body: bytes, headers: Mapping[str, str], *, timeout: float | None = None
) -> Answer:
    """POST ``body``; any HTTP answer is an ``Answer`` (redirects are not followed). Raises
    FetchError: ``refused_url`` (never connected), ``unreachable``, ``timeout``."""
    _check_url(url)
    limit = timeout or fedsx_settings.DELIVERY_TIMEOUT_SECONDS
    host = httpx.URL(url).host
    try:
        with pooled().stream(
            "POST",
            url,
            content=body,
            headers=dict(headers),
            timeout=httpx.Timeout(limit, connect=min(limit, 5.0)),
        ) as response:
            answer = b""
            for chunk in response.iter_bytes():
                answer += chunk
                if len(answer) >= MAX_ANSWER_BYTES:
                    break
            return Answer(response.status_code, response.headers, answer[:MAX_ANSWER_BYTES])
    except RefusedAddress as exc:
        raise FetchError("refused_url", str(exc)) from None
    except httpx.TimeoutException:
        raise FetchError("timeout", f"{host} timed out", temporary=True) from None
    except httpx.HTTPError as exc:
        cause = exc.__cause__ or exc.__context__
        if isinstance(cause, RefusedAddress):
            raise FetchError("refused_url", str(cause)) from None
        raise FetchError(
            "unreachable", f"{host}: {type(exc).__name__} {exc}".strip(), temporary=True
        ) from None
