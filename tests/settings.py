"""Test settings: the node's settings with test defaults.

``DATABASE_URL`` (Postgres in CI) is honoured. Tasks run eagerly inside the test process;
the end-to-end tests in ``tests/e2e`` start real servers and workers with the real broker.
"""

import os

os.environ.setdefault("SECRET_KEY", "test-only-not-secret")
# Metrics in memory (tests/test_metrics.py starts processes with a directory of their own).
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", "")

from fedsx.server.settings import *  # noqa: F403

CELERY_TASK_ALWAYS_EAGER = True
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# The suite drives in-process work itself; no background threads or ticker.
FEDSX = {"BASE_URL": "http://testserver", "JOBS_IN_PROCESS_THREADS": False}
