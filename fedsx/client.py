"""The guarded HTTP client for every outbound request: deliveries (``post``) and the
documents (actors, keys, WebFinger) the node fetches (``get``, used by ``fetch.fetch_json``).

The address is checked where the connection is made: a network backend for httpcore
resolves the host, refuses loopback, private, link-local, reserved and metadata addresses
(``is_internal``) unless the host is in ``FETCH_ALLOWLIST``, and connects to the very
address it checked. So a DNS answer that changes between a check and the connect cannot
reach an internal address, and connections are still pooled by host name, with TLS
checked against the name as usual. One client per process (thread-safe; made anew after a
fork), with a small pool of its own per host (``PerHostTransport``: see "the pools" below
for why not one big pool): a request to a server that was just asked reuses its
kept-alive connection.
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
import ssl
import threading
import time
from collections import OrderedDict
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


# ── the pools ──────────────────────────────────────────────────────────────────────────
#
# One small pool per host (scheme, host, port), not one big pool for all: httpcore 1.0.9's
# pool scans every connection it holds on every request, twice, with an inner scan, under
# its lock (quadratic in pooled connections; encode/httpcore#1035). Measured here, one
# shared pool of 200 (100 kept alive) cost 31 of the 41 ms CPU of a delivery at 1,000
# hosts, and 50 idle connections ~3.6 ms CPU per POST even to one host. Per-host pools
# sharing one SSL context took deliver() from ~77/s to ~180/s at 1,000 hosts. A host's
# pool is a dict look-up away and holds a handful of connections, so its scan is cheap.

# A host's pool: the deliveries sent to it at once, plus room for the GETs (keys, actors)
# the node makes to it meanwhile.
HOST_POOL_EXTRA = 4
# How many hosts' pools are kept; beyond it the least recently used idle pool is closed
# (its kept-alive connections with it). A pool in use is never closed.
HOST_POOLS_KEPT = 256
# A pool idle this long is closed: httpcore would not reuse its connections any more.
KEEPALIVE_EXPIRY_SECONDS = 5.0


class _PoolTransport(httpx.HTTPTransport):
    """httpx's transport over a pool made here (``HTTPTransport.__init__`` would make a pool
    of its own, and an SSL context for it: it is not called; the methods used, the request
    and ``close``, need only ``_pool``)."""

    def __init__(self, pool: httpcore.ConnectionPool) -> None:  # not the parent's: see above
        self._pool = pool


class _HostPool:
    __slots__ = ("busy", "idle_since", "key", "transport")

    def __init__(self, key: tuple, transport: _PoolTransport) -> None:
        self.key = key
        self.transport = transport
        self.busy = 0  # requests using it now (their responses not closed yet)
        self.idle_since = time.monotonic()


class _Releasing(httpx.SyncByteStream):
    """A response's stream that gives its pool back (once) when the response is closed."""

    def __init__(self, stream: httpx.SyncByteStream, release) -> None:
        self._stream = stream
        self._release = release

    def __iter__(self) -> Iterator[bytes]:
        yield from self._stream

    def close(self) -> None:
        try:
            self._stream.close()
        finally:
            release, self._release = self._release, None
            if release is not None:
                release()


class PerHostTransport(httpx.BaseTransport):
    """An httpx transport with a pool of its own for each (scheme, host, port), all sharing
    one SSL context and one network backend (the guard). At most ``connections``
    connections per host; at most ``kept`` hosts' pools kept, least recently used idle ones
    closed first; an idle pool is closed after ``expiry`` seconds. Thread-safe."""

    def __init__(
        self,
        *,
        connections: int,
        kept: int = HOST_POOLS_KEPT,
        expiry: float = KEEPALIVE_EXPIRY_SECONDS,
        backend: httpcore.NetworkBackend | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.connections = connections
        self.kept = kept
        self.expiry = expiry
        self._backend = backend if backend is not None else GuardedBackend()
        # One SSL context for all: making one (loading the CA bundle) costs milliseconds.
        self._ssl_context = ssl_context or httpx.create_ssl_context(trust_env=False)
        self._pools: OrderedDict[tuple, _HostPool] = OrderedDict()  # least recent first
        self._lock = threading.Lock()

    def hosts(self) -> list[tuple]:
        """The (scheme, host, port) whose pools are kept, least recently used first."""
        with self._lock:
            return list(self._pools)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        entry = self._acquire((request.url.scheme, request.url.host, request.url.port))
        try:
            response = entry.transport.handle_request(request)
        except BaseException:
            self._release(entry)
            raise
        return httpx.Response(
            status_code=response.status_code,
            headers=response.headers,
            stream=_Releasing(response.stream, lambda: self._release(entry)),
            extensions=response.extensions,
        )

    def close(self) -> None:
        with self._lock:
            pools, self._pools = list(self._pools.values()), OrderedDict()
        for entry in pools:
            entry.transport.close()

    def _acquire(self, key: tuple) -> _HostPool:
        with self._lock:
            entry = self._pools.get(key)
            if entry is None:
                entry = self._pools[key] = _HostPool(key, self._new_transport())
            else:
                self._pools.move_to_end(key)
            entry.busy += 1
            evicted = self._evict(time.monotonic())
        for old in evicted:  # outside the lock: closing sockets (TLS close_notify) takes time
            old.transport.close()
        return entry

    def _release(self, entry: _HostPool) -> None:
        with self._lock:
            entry.busy -= 1
            entry.idle_since = time.monotonic()
            kept = self._pools.get(entry.key) is entry
            if kept:
                self._pools.move_to_end(entry.key)
        if not kept and not entry.busy:  # closed (reset) while in use
            entry.transport.close()

    def _evict(self, now: float) -> list[_HostPool]:
        """Under the lock: take out the idle pools beyond ``kept`` (least recently used
        first) and those idle too long. Idle pools are in order of release, so the scan
        stops at the first one that may stay (it passes only pools in use)."""
        doomed = []
        for key, entry in self._pools.items():
            if entry.busy:
                continue
            if len(self._pools) - len(doomed) > self.kept or now - entry.idle_since > self.expiry:
                doomed.append(key)
                continue
            break
        return [self._pools.pop(key) for key in doomed]

    def _new_transport(self) -> _PoolTransport:
        return _PoolTransport(
            httpcore.ConnectionPool(
                ssl_context=self._ssl_context,
                max_connections=self.connections,
                max_keepalive_connections=self.connections,
                keepalive_expiry=self.expiry,
                network_backend=self._backend,
            )
        )


def host_pool_size() -> int:
    return fedsx_settings.DELIVERY_HOST_CONCURRENCY + HOST_POOL_EXTRA


_client: httpx.Client | None = None
_client_pid = 0
_client_lock = threading.Lock()


def _forget_after_fork() -> None:
    # The parent's connections are not ours to use (or close: a TLS close_notify would go
    # out on the parent's socket), and its lock may have been held by a thread that is gone.
    global _client, _client_lock
    _client, _client_lock = None, threading.Lock()


os.register_at_fork(after_in_child=_forget_after_fork)


def user_agent() -> str:
    """fedsx and the node (its public origin), so a peer's operator knows who is asking."""
    return f"fedsx/{__version__} (+{fedsx_settings.BASE_URL})"


def pooled() -> httpx.Client:
    """This process's pooled client (per-host pools behind one ``httpx.Client``)."""
    global _client, _client_pid
    if _client is None or _client_pid != os.getpid():
        with _client_lock:
            if _client is None or _client_pid != os.getpid():
                _client = httpx.Client(
                    transport=PerHostTransport(connections=host_pool_size()),
                    follow_redirects=False,
                    trust_env=False,
                )
                _client_pid = os.getpid()
    return _client


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
