"""The kernel's announcements to the apps built on it.

``inbox_appended`` is sent once per append that created inbox entries, inside the append's
transaction, with ``entries`` (the new InboxEntry rows, in recipient order) and ``using``
(the database alias). Receivers that act on the entries defer their work to after the
commit (``fedsx.jobs.after_commit``): a rolled-back append must trigger nothing.
"""

from __future__ import annotations

from django.dispatch import Signal

inbox_appended = Signal()
