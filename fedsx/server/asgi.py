"""ASGI entry point. WSGI is measurably faster for the inbox; prefer fedsx.server.wsgi."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fedsx.server.settings")
application = get_asgi_application()
