import mimetypes

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.core.validators import URLValidator

from fedsx.actors import ActorExists, create_local_actor


class Command(BaseCommand):
    help = "Create a local actor with an RSA-2048 and an Ed25519 key pair and print its id."

    def add_arguments(self, parser):
        parser.add_argument("name", help="preferred username, e.g. demo")
        parser.add_argument("--display-name", default="", help="the actor's display name")
        parser.add_argument("--icon", default="", help="URL of the actor's avatar (http/https)")
        parser.add_argument(
            "--icon-type",
            default="",
            help="the avatar's media type, e.g. image/png (default: guessed from the URL)",
        )
        parser.add_argument(
            "--exists-ok",
            action="store_true",
            help="succeed if the actor exists (and refresh its ids from FEDSX_BASE_URL)",
        )

    def handle(self, *args, name: str, display_name: str, exists_ok: bool, **options):
        icon, icon_type = _icon(options["icon"], options["icon_type"])
        try:
            actor = create_local_actor(
                name,
                name=display_name,
                exists_ok=exists_ok,
                icon_url=icon,
                icon_media_type=icon_type,
            )
        except ValidationError as exc:
            raise CommandError(exc.messages[0]) from None
        except ActorExists as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(actor.ap_id)


def _icon(url: str, media_type: str) -> tuple[str, str]:
    if not url:
        return "", ""
    try:
        URLValidator(schemes=["http", "https"])(url)
    except ValidationError:
        raise CommandError(f"--icon must be an http(s) URL, not {url!r}") from None
    if len(url) > 500:
        raise CommandError("--icon is at most 500 characters")
    media_type = media_type or mimetypes.guess_type(url)[0] or ""
    if media_type and not media_type.startswith("image/"):
        raise CommandError(f"--icon-type must be an image media type, not {media_type!r}")
    return url, media_type
