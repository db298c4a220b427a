"""Who may call the API: a token for scripts, the admin's session for the browsable API.

Tokens are DRF's own (``rest_framework.authtoken``): one per user, made and revoked with
``manage.py api_token`` or the admin. The token scheme comes first, so a request without
credentials is answered 401 with ``WWW-Authenticate: Token``.
"""

from __future__ import annotations

from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from rest_framework.authtoken.models import Token

API_AUTHENTICATION = [TokenAuthentication, SessionAuthentication]


def issue_token(user) -> str:
    """A new token for ``user``, replacing any they had."""
    Token.objects.filter(user=user).delete()
    return Token.objects.create(user=user).key


def revoke_token(user) -> bool:
    """Revoke ``user``'s token; False if they had none."""
    deleted, _ = Token.objects.filter(user=user).delete()
    return bool(deleted)
