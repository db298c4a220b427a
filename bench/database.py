"""A benchmark's own Postgres database, made with the migrations and dropped at the end, so a
benchmark never touches the node's data (bench/flows.py, bench/dashboard.py)."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def own_database(name: str, script: str) -> Iterator[None]:
    """Set Django up on a fresh database ``name`` (beside DATABASE_URL's), drop it after."""
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        sys.exit(f"{script} needs DATABASE_URL=postgres://... (it makes its own database)")
    import django

    django.setup()
    from django.db import connection

    connection.settings_dict["TEST"]["NAME"] = name
    real_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        yield
    finally:
        connection.close()
        connection.creation.destroy_test_db(real_name, verbosity=0)
