"""Settings for benchmark servers: the node's settings plus the floor view, with the
trigger dispatch switched by BENCH_DISPATCH (1/0) and the metrics by BENCH_METRICS_FLAG
(on while that file exists)."""

import os

from fedsx.server.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
DEBUG = False
FEDSX = {
    **FEDSX,  # noqa: F405
    "DISPATCH_TRIGGERS": os.environ.get("BENCH_DISPATCH", "0") == "1",
}
LOGGING = {"version": 1, "disable_existing_loggers": False}


class _MetricsByFlag(dict):
    """FEDSX whose METRICS follows a flag file (bench/inbox.py --metrics): on while the file
    exists, so one server's workers switch between blocks of requests."""

    def get(self, key, default=None):
        if key == "METRICS":
            return os.path.exists(_FLAG)
        return super().get(key, default)


_FLAG = os.environ.get("BENCH_METRICS_FLAG", "")
if _FLAG:
    FEDSX = _MetricsByFlag(FEDSX)
