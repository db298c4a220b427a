"""The Celery app the end-to-end tests' worker runs: the node's own app plus the test flows.

celery -A tests.e2e.worker worker
"""

from fedsx.server.celery import app
from tests.triggers import testflows  # noqa: F401  (registers test.done, test.crash, test.slow)

__all__ = ["app"]
