"""A Redis transport for Celery that reuses its synchronous Redis client.

kombu's Redis channel builds a new ``redis.Redis`` client around its connection pool for
every publish; building one (its table of response callbacks) was about half of a
publish's CPU in the web process, where every committed inbox entry is published. The
client is a thin, thread-safe wrapper over the pool, so one per channel serves as well.

Used when ``CELERY_BROKER_URL`` starts with ``redis://`` (see ``fedsx/server/settings.py``).
"""

from __future__ import annotations

from kombu.transport import redis


class Channel(redis.Channel):
    _sync_client = None

    def _create_client(self, asynchronous: bool = False):
        if asynchronous:
            return super()._create_client(asynchronous=True)
        if self._sync_client is None or self._sync_client.connection_pool is not self.pool:
            self._sync_client = super()._create_client(asynchronous=False)
        return self._sync_client


class Transport(redis.Transport):
    Channel = Channel
