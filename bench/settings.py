"""Settings for benchmark servers: the node's settings plus the floor view, with the
trigger dispatch switched by BENCH_DISPATCH (1/0) and the metrics by BENCH_METRICS (1/0)."""

import os

from fedsx.server.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
DEBUG = False
FEDSX = {
    **FEDSX,  # noqa: F405
    "DISPATCH_TRIGGERS": os.environ.get("BENCH_DISPATCH", "0") == "1",
    "METRICS": os.environ.get("BENCH_METRICS", "1") == "1",
}
LOGGING = {"version": 1, "disable_existing_loggers": False}
