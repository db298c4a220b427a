"""``GET /metrics``: the Prometheus text format, for loopback clients and holders of the
configured token only.

Once ``FEDSX["METRICS_TOKEN"]`` is set, every client must send ``Authorization: Bearer
<token>`` (compared in constant time), loopback ones too: behind a reverse proxy every
client's REMOTE_ADDR is the proxy's, and not every proxy says so with a forwarding header
(nginx's plain ``proxy_pass`` adds none). With no token configured, only clients
connecting from a loopback address directly are let in (a request carrying a forwarding
header is not taken for one). Anything else is a 403 in the ``{"error", "detail"}`` shape.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging

from django.http import HttpRequest, HttpResponse, JsonResponse
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from fedsx.conf import fedsx_settings
from fedsx.errors import error_body

from . import REGISTRY
from .gauges import DatabaseGauges
from .processes import directory

logger = logging.getLogger("fedsx.metrics")

# Headers a reverse proxy adds: their presence means REMOTE_ADDR is the proxy, not the client.
FORWARDING_HEADERS = ("HTTP_FORWARDED", "HTTP_X_FORWARDED_FOR", "HTTP_X_REAL_IP")

# The text format every Prometheus reads (our names need nothing newer).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_gauges = DatabaseGauges()
REGISTRY.register(_gauges)  # the in-memory registry's scrape reads them too


def refused(status: int, code: str, detail: str) -> JsonResponse:
    return JsonResponse(error_body(code, detail), status=status)


def is_loopback(request: HttpRequest) -> bool:
    if any(request.META.get(header) for header in FORWARDING_HEADERS):
        return False
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return address.is_loopback


def bearer_token(request: HttpRequest) -> str | None:
    """The bearer token sent, '' for another kind of Authorization, None for none."""
    header = request.META.get("HTTP_AUTHORIZATION")
    if header is None:
        return None
    scheme, _, token = header.strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def access_refusal(request: HttpRequest) -> JsonResponse | None:
    token, expected = bearer_token(request), fedsx_settings.METRICS_TOKEN
    if token is None:
        if not expected and is_loopback(request):
            return None
        return refused(403, "forbidden", "metrics are served to loopback or token holders only")
    if expected and hmac.compare_digest(token.encode(), str(expected).encode()):
        return None
    return refused(403, "bad_token", "the metrics token is wrong")


def exposition() -> bytes:
    path = directory()
    if path is None:
        return generate_latest(REGISTRY)
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path)
    registry.register(_gauges)
    return generate_latest(registry)


def metrics_view(request: HttpRequest) -> HttpResponse:
    refusal = access_refusal(request)
    if refusal is not None:
        return refusal
    if request.method not in ("GET", "HEAD"):
        response = refused(405, "method_not_allowed", "metrics are read with GET")
        response["Allow"] = "GET, HEAD"
        return response
    try:
        body = exposition()
    except Exception:
        logger.exception("the metrics could not be gathered")
        return refused(503, "metrics_unavailable", "the metrics could not be gathered")
    return HttpResponse(body, content_type=CONTENT_TYPE)
