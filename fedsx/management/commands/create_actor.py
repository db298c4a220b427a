from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from fedsx.actors import ActorExists, create_local_actor


class Command(BaseCommand):
    help = "Create a local actor with an RSA-2048 key pair and print its id."

    def add_arguments(self, parser):
        parser.add_argument("name", help="preferred username, e.g. demo")
        parser.add_argument("--display-name", default="", help="the actor's display name")
        parser.add_argument(
            "--exists-ok",
            action="store_true",
            help="succeed if the actor exists (and refresh its ids from FEDSX_BASE_URL)",
        )

    def handle(self, *args, name: str, display_name: str, exists_ok: bool, **options):
        try:
            actor = create_local_actor(name, name=display_name, exists_ok=exists_ok)
        except ValidationError as exc:
            raise CommandError(exc.messages[0]) from None
        except ActorExists as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(actor.ap_id)
