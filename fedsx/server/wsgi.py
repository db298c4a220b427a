"""WSGI entry point (gunicorn fedsx.server.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fedsx.server.settings")
application = get_wsgi_application()
