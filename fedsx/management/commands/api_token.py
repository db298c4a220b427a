"""``manage.py api_token USERNAME``: print a new API token for a user, or ``--revoke`` it."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from fedsx.api.authentication import issue_token, revoke_token


class Command(BaseCommand):
    help = (
        "Print a new REST API token for a user (their old one stops working), or revoke "
        "theirs with --revoke. The API grants what the user's model permissions grant."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("username", help="an existing Django user")
        parser.add_argument("--revoke", action="store_true", help="revoke the user's token")

    def handle(self, *args, username: str, revoke: bool, **options) -> None:
        user_model = get_user_model()
        user = user_model._default_manager.filter(**{user_model.USERNAME_FIELD: username}).first()
        if user is None:
            raise CommandError(f"no user named {username!r} (create one with createsuperuser)")
        if revoke:
            if not revoke_token(user):
                raise CommandError(f"user {username!r} has no token to revoke")
            self.stdout.write(f"revoked the API token of {username}")
            return
        if not user.is_active:
            raise CommandError(f"user {username!r} is inactive: a token would not authenticate")
        self.stdout.write(issue_token(user))
