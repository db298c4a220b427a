"""Who may read what: authorized fetch (``FEDSX["AUTHORIZED_FETCH"]``, off by default).

When it is on, a GET of a posted activity or object, or of a collection, must carry an HTTP
signature (draft-cavage or RFC 9421) that verifies with a key the node can fetch, from a
server whose domain is not blocked, as Mastodon's authorized-fetch mode asks. The check is
the inbox's own (fedsx/inbox.py): the same signature parsing, Host check, key cache and
fetch, key-rotation refetch and domain blocks; a GET has no body, so no digest step.
Refusals: 401 (no signature, a bad one, a key that cannot be had), 403 (a blocked domain),
503 (a key fetch that may work later), in the ``{"error", "detail"}`` shape.
"""

from __future__ import annotations

from django.http import HttpRequest
from rest_framework.permissions import BasePermission

from . import inbox, keys
from .conf import fedsx_settings
from .errors import FederationError


def signed_fetcher(request: HttpRequest) -> keys.VerificationKey:
    """The verified key that signed this GET; ``FederationError`` if there is none."""
    signed = inbox.signed_request(request, b"")
    signature = inbox.parse_signature(signed)
    inbox.check_addressed_to_us(signed)
    inbox.check_not_blocked(signature.key_id, "")  # before fetching anything from there
    try:
        key = keys.key_for(signature.key_id)
    except keys.KeyUnavailable as exc:
        raise inbox.key_rejection(exc) from None
    key = inbox.verify(signed, signature, key)
    inbox.check_not_blocked(signature.key_id, key.owner)
    return key


def verified_fetcher(request: HttpRequest) -> keys.VerificationKey | None:
    """As ``signed_fetcher``, but None for a request without a valid signature."""
    try:
        return signed_fetcher(request)
    except FederationError:
        return None


class AuthorizedFetch(BasePermission):
    """Under AUTHORIZED_FETCH, only validly signed GETs from unblocked servers pass."""

    def has_permission(self, request, view) -> bool:
        if fedsx_settings.AUTHORIZED_FETCH:
            request.fetcher = signed_fetcher(request._request)
        return True
