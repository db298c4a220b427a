"""WSGI entry point (gunicorn fedsx.server.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fedsx.server.settings")
application = get_wsgi_application()

# A serving process: in-process deliveries on background threads and, with no broker, the
# ticker that sweeps retries (fedsx/jobs.py); started now, not at the first request.
from fedsx import jobs  # noqa: E402

jobs.serving()
