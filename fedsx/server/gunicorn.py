"""gunicorn configuration of a served node: ``gunicorn -c python:fedsx.server.gunicorn
fedsx.server.wsgi`` (other options on the command line as usual).

Its hooks keep the metrics directory (fedsx/metrics/processes.py) right: at start the
files of processes no longer running are archived, and a worker that exits is marked dead.
"""

from __future__ import annotations

import os


def on_starting(server) -> None:
    # The settings decide the directory (PROMETHEUS_MULTIPROC_DIR); the workers inherit it.
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fedsx.server.settings")
    from django.conf import settings

    settings.INSTALLED_APPS  # noqa: B018 - loads the settings

    from fedsx.metrics.processes import archive_dead_files

    archive_dead_files()


def child_exit(server, worker) -> None:
    from fedsx.metrics.processes import mark_process_dead

    mark_process_dead(worker.pid)
