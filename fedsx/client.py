"""The guarded HTTP client for every outbound request: deliveries (``post``) and the
documents (actors, keys, WebFinger) the node fetches (``get``, used by ``fetch.fetch_json``).

The address is checked where the connection is made: a network backend for httpcore
resolves the host, refuses loopback, private, link-local, reserved and metadata addresses
(``is_internal``) unless the host is in ``FETCH_ALLOWLIST``, and connects to the very
address it checked. So a DNS answer that changes between a check and the connect cannot
reach an internal address, and connections are still pooled by host name, with TLS
checked against the name as usual. One pooled client per process (thread-safe; made anew
after a fork): a request to a server that was just asked reuses its kept-alive connection.
Redirects are never followed here: a POST's answer is its status, and ``fetch_json``
follows a GET's redirects itself, each hop through this same guard.

Every request names fedsx and the node in its ``User-Agent``. Every GET is signed
(draft-cavage over ``(request-target) host date``) with the key of the node's instance
actor (``fedsx.actors.instance_actor``), so servers that answer only signed fetches
(GoToSocial; Mastodon in authorized-fetch mode) answer us.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import httpcore
import httpx

from . import __version__
from .actors import instance_actor
from .conf import fedsx_settings
from .httpsig import sign_request

MAX_ANSWER_BYTES = 64 * 1024  # of a delivery's answer: only the status matters
POOL_CONNECTIONS = 200
KEEPALIVE_CONNECTIONS = 100
# A server that does not even accept the connection within this is not waited for longer,
# whatever time the whole request has.
CONNECT_TIMEOUT_SECONDS = 5.0


class FetchError(Exception):
    """An outbound request that gave no usable answer. ``temporary`` failures deserve a
    retry; ``gone`` means the document is gone (404/410)."""

    def __init__(self, code: str, detail: str, *, temporary: bool = False, gone: bool = False):
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.temporary = temporary
        self.gone = gone


class ConnectFailed(FetchError):
    """No connection could be made (unresolvable host, refused, connect timeout): the one
    failure that says something about the server rather than the path asked."""


# ── the guard ──────────────────────────────────────────────────────────────────────────

METADATA_ADDRESSES = {
    ipaddress.ip_address("169.254.169.254"),
    ipaddress.ip_address("fd00:ec2::254"),
    ipaddress.ip_address("100.100.100.200"),  # Alibaba Cloud metadata
}
NAT64 = ipaddress.ip_network("64:ff9b::/96")
SIX_TO_FOUR = ipaddress.ip_network("2002::/16")
SITE_LOCAL = ipaddress.ip_network("fec0::/10")


def allowlist() -> set[str]:
    """Hosts (``host`` or ``host:port``) that may be reached although they are internal."""
    return {h.strip().lower() for h in fedsx_settings.FETCH_ALLOWLIST.split(",") if h.strip()}


def is_internal(address: str) -> bool:
    """Whether an IP address is one no outbound request may reach (unless allowlisted)."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            return is_internal(str(embedded))
        if ip in SITE_LOCAL:
            return True
    # is_global is False for loopback, private, link-local, reserved, shared (CGNAT) and
    # unspecified ranges; multicast can be "global" and is never a document server.
    return ip in METADATA_ADDRESSES or not ip.is_global or ip.is_multicast


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one reaches: mapped, compatible, NAT64 or 6to4."""
    if ip.ipv4_mapped:
        return ip.ipv4_mapped
    if ip in NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip in SIX_TO_FOUR:
        return ip.sixtofour
    if int(ip) >> 32 == 0 and int(ip) > 1:  # ::a.b.c.d, IPv4-compatible (deprecated)
        return ipaddress.IPv4Address(int(ip))
    return None


class RefusedAddress(httpcore.ConnectError):
    """Raised inside httpcore when a host resolves to an address we do not connect to."""


class Unresolvable(httpcore.ConnectError):
    """Raised inside httpcore when a host name has no address."""


class GuardedBackend(httpcore.SyncBackend):
    """Connects only to addresses that pass the SSRF check, and to the one checked."""

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        address = checked_address(host, port)
        return super().connect_tcp(address, port, timeout, local_address, socket_options)


def checked_address(host: str, port: int) -> str:
    """The address to connect to for ``host:port``; RefusedAddress when any address the
    name has is internal (a name with one public and one internal address is refused: the
    internal one could be chosen next time), unless the host is allowlisted."""
    host = host.strip("[]").lower()
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise Unresolvable(f"cannot resolve {host}") from exc
    addresses = [info[4][0] for info in infos]
    allowed = allowlist()
    if host in allowed or f"{host}:{port}" in allowed:
        return addresses[0]
    if any(is_internal(address) for address in addresses):
        raise RefusedAddress(f"{host} resolves to an internal address")
    return addresses[0]


# ── the pool ───────────────────────────────────────────────────────────────────────────

_client: httpx.Client | None = None
_client_pid = 0
_client_lock = threading.Lock()


def user_agent() -> str:
    """fedsx and the node (its public origin), so a peer's operator knows who is asking."""
    return f"fedsx/{__version__} (+{fedsx_settings.BASE_URL})"


def pooled() -> httpx.Client:
    """This process's pooled client."""
    global _client, _client_pid
    if _client is None or _client_pid != os.getpid():
        with _client_lock:
            if _client is None or _client_pid != os.getpid():
                _client = httpx.Client(
                    transport=_guarded_transport(), follow_redirects=False, trust_env=False
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


def _timeout(seconds: float) -> httpx.Timeout:
    return httpx.Timeout(seconds, connect=min(seconds, CONNECT_TIMEOUT_SECONDS))


def _check_url(url: str) -> httpx.URL:
    try:
        parts = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError):
        raise FetchError("refused_url", "not a valid URL") from None
    if parts.scheme not in {"http", "https"} or not parts.host:
        raise FetchError("refused_url", "only http(s) URLs with a host are fetched")
    if parts.userinfo:
        raise FetchError("refused_url", "URLs with credentials are not fetched")
    return parts


def _failure(exc: httpx.HTTPError, host: str) -> FetchError:
    """What an httpx error means, as a FetchError: refused by the guard (never connected),
    no connection, timed out, or broken off."""
    cause = exc.__cause__ or exc.__context__  # httpx wraps the httpcore error it mapped
    if isinstance(cause, RefusedAddress):
        return FetchError("refused_url", str(cause))
    if isinstance(cause, Unresolvable):
        return ConnectFailed("unresolvable", str(cause), temporary=True)
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
        return ConnectFailed("unreachable", f"{host}: {type(exc).__name__}", temporary=True)
    if isinstance(exc, httpx.TimeoutException):
        return FetchError("timeout", f"{host} timed out", temporary=True)
    return FetchError("unreachable", f"{host}: {type(exc).__name__} {exc}".strip(), temporary=True)


# ── requests ───────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class Answer:
    status: int
    headers: httpx.Headers
    body: bytes


def post(
    url: str, body: bytes, headers: Mapping[str, str], *, timeout: float | None = None
) -> Answer:
    """POST ``body``; any HTTP answer is an ``Answer`` (redirects are not followed). Raises
    FetchError: ``refused_url`` (never connected), ``unreachable``, ``timeout``."""
    host = _check_url(url).host
    limit = timeout or fedsx_settings.DELIVERY_TIMEOUT_SECONDS
    try:
        with pooled().stream(
            "POST",
            url,
            content=body,
            headers={"User-Agent": user_agent(), **headers},
            timeout=_timeout(limit),
        ) as response:
            answer = b""
            for chunk in response.iter_bytes():
                answer += chunk
                if len(answer) >= MAX_ANSWER_BYTES:
                    break
            return Answer(response.status_code, response.headers, answer[:MAX_ANSWER_BYTES])
    except httpx.HTTPError as exc:
        raise _failure(exc, host) from None


@contextmanager
def get(url: str, *, accept: str, timeout: float) -> Iterator[httpx.Response]:
    """GET ``url`` signed as the instance actor, without following a redirect; yields the
    streamed response (closed on leaving). Raises FetchError as ``post`` does, also for an
    error while the body is read; ``ConnectFailed`` when no connection could be made."""
    parts = _check_url(url)
    url, host = str(parts), parts.host  # signed as sent: an IDN host in its ASCII form
    signer = instance_actor()
    headers = {"Accept": accept, "User-Agent": user_agent()}
    # Signed per request (the request target is part of it): each redirect hop anew.
    headers |= sign_request(
        "GET", url, headers, None, key_id=signer.key_id, private_key_pem=signer.private_key_pem
    )
    try:
        with pooled().stream("GET", url, headers=headers, timeout=_timeout(timeout)) as response:
            yield response
    except httpx.HTTPError as exc:
        raise _failure(exc, host) from None
