"""Fetching remote ActivityPub documents (actors, keys) safely.

Every fetch is bounded (timeout, size, redirects) and guarded against SSRF: a keyId is
chosen by whoever sends us a request, so its host is resolved here and refused when any
address is loopback, private, link-local, reserved or a cloud metadata service, unless
the host is in ``FETCH_ALLOWLIST``. The connection then goes to the address that was
checked (the host name is kept for the Host header and TLS), so a DNS answer that changes
between the check and the connect cannot reach an internal address.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx
import orjson

from . import media
from .conf import fedsx_settings
from .models import host_of

USER_AGENT = "fedsx/0.1 (+https://github.com/fedsx/fedsx)"
ACCEPT = f"{media.ACTIVITY_JSON}, {media.LD_JSON_AS}"
METADATA_ADDRESSES = {
    ipaddress.ip_address("169.254.169.254"),
    ipaddress.ip_address("fd00:ec2::254"),
    ipaddress.ip_address("100.100.100.200"),  # Alibaba Cloud metadata
}


class FetchError(Exception):
    """A fetch that did not give a document. ``temporary`` failures deserve a retry."""

    def __init__(self, code: str, detail: str, *, temporary: bool = False, gone: bool = False):
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.temporary = temporary
        self.gone = gone


@dataclass(frozen=True)
class Target:
    url: str
    host: str
    port: int
    address: str


# Where a connection could not be made lately: (scheme, host as written, port) → until when
# it is not tried again. A dead or unresolvable server then costs one attempt (up to
# FETCH_TIMEOUT_SECONDS of a web worker) per FETCH_BACKOFF_SECONDS, not one per request
# naming it. Only connection failures count, and only for exactly where the connection went:
# an HTTP error or a slow answer concerns the path a sender chose, and a sender must not be
# able to make us stop fetching from a host that answers everyone else.
_unreachable: dict[tuple[str, str, int], float] = {}
_unreachable_lock = threading.Lock()
UNREACHABLE_MAX_ENTRIES = 10_000


def _connect_key(url: str) -> tuple[str, str, int] | None:
    try:
        return connection_point(url)
    except ValueError:
        return None


def connection_point(url: str) -> tuple[str, str, int]:
    """(scheme, lower-case host as written, port) a fetch of ``url`` connects to; raises
    ValueError for a URL that has none (a bad port)."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return parts.scheme, (parts.hostname or "").lower(), port


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


def allowlist() -> set[str]:
    return {h.strip().lower() for h in fedsx_settings.FETCH_ALLOWLIST.split(",") if h.strip()}


NAT64 = ipaddress.ip_network("64:ff9b::/96")
SIX_TO_FOUR = ipaddress.ip_network("2002::/16")
SITE_LOCAL = ipaddress.ip_network("fec0::/10")


def is_internal(address: str) -> bool:
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


def resolve_target(url: str) -> Target:
    """Check a URL and pick the address to connect to; raises FetchError("refused_url")."""
    try:
        scheme, host, port = connection_point(url)
    except ValueError:
        raise FetchError("refused_url", "not a valid URL") from None
    parts = urlsplit(url)
    if scheme not in {"http", "https"} or not host:
        raise FetchError("refused_url", "only http(s) URLs with a host are fetched")
    if parts.username or parts.password:
        raise FetchError("refused_url", "URLs with credentials are not fetched")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise FetchError("unresolvable", f"cannot resolve {host}", temporary=True) from None
    addresses = [info[4][0] for info in infos]
    allowed = host in allowlist() or f"{host}:{port}" in allowlist()
    if not allowed and any(is_internal(a) for a in addresses):
        raise FetchError("refused_url", f"{host} resolves to an internal address")
    return Target(url=url, host=host, port=port, address=addresses[0])


def _pinned_request(client: httpx.Client, target: Target) -> httpx.Request:
    parts = urlsplit(target.url)
    address = f"[{target.address}]" if ":" in target.address else target.address
    netloc = f"{address}:{target.port}"
    pinned = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
    host_header = parts.netloc.rsplit("@", 1)[-1]
    return client.build_request(
        "GET",
        pinned,
        headers={"Host": host_header, "Accept": ACCEPT, "User-Agent": USER_AGENT},
        extensions={"sni_hostname": target.host},
    )


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


def fetch_json(url: str) -> dict[str, Any]:
    """GET an ActivityPub document; raises FetchError (temporary, gone or permanent).

    The whole fetch, redirects included, has FETCH_TIMEOUT_SECONDS; redirects may not leave
    the host first asked: a document is only believed about its own host.
    """
    timeout = fedsx_settings.FETCH_TIMEOUT_SECONDS
    deadline = time.monotonic() + timeout
    origin = host_of(url)
    with httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False) as client:
        for _ in range(fedsx_settings.FETCH_MAX_REDIRECTS + 1):
            if host_of(url) != origin:
                raise FetchError("refused_url", "a redirect to another host is not followed")
            where = _connect_key(url)
            _refuse_if_recently_unreachable(where)
            try:
                target = resolve_target(url)
            except FetchError as exc:
                if exc.code == "unresolvable":
                    _mark_unreachable(where)
                raise
            try:
                response = client.send(_pinned_request(client, target), stream=True)
                try:
                    if response.is_redirect and "location" in response.headers:
                        url = urljoin(url, response.headers["location"])
                        continue
                    _raise_for_status(response)
                    body = _read_capped(response, fedsx_settings.FETCH_MAX_BYTES, deadline)
                finally:
                    response.close()
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                _mark_unreachable(where)
                raise FetchError(
                    "unreachable", f"{target.host}: {type(exc).__name__}", temporary=True
                ) from None
            except httpx.TimeoutException:
                raise FetchError("timeout", f"{target.host} timed out", temporary=True) from None
            except httpx.HTTPError as exc:
                raise FetchError(
                    "unreachable", f"{target.host}: {type(exc).__name__}", temporary=True
                ) from None
            return _parse_document(body)
    raise FetchError("too_many_redirects", "too many redirects")


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
