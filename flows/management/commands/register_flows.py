"""``manage.py register_flows``: the name DESIGN.md uses for ``manage.py flows register``."""

from django.core.management import call_command
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Sync registered flows into the database (same as `manage.py flows register`)."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="machine-readable output")

    def handle(self, *args, json: bool, **options):
        call_command("flows", "register", *(["--json"] if json else []), stdout=self.stdout)
