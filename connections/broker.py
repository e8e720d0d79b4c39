"""The brokers' transports: kombu's, each with one fix.

The embedded broker: kombu's filesystem transport, with each message written whole before it is seen.

kombu's `_put` creates the message file under its final name, then writes it: a worker polling the
folder at that instant moved the empty file away, failed to decode it (JSONDecodeError) and its
consumer stopped for good, the message lost with it (seen once in this project's test suite: every
run queued after it waited in vain). Here a message is written under a name no worker takes (it
does not end in `.msg`) and then renamed to kombu's own name for it, which is atomic on one file
system. `CELERY_BROKER_TRANSPORT` names this transport wherever the broker is `filesystem://`.

Redis: kombu's transport, without a new client object for every message (RedisTransport).
"""

from __future__ import annotations

import os
import uuid
from time import monotonic
from typing import Any

from kombu.exceptions import ChannelError
from kombu.transport import filesystem, redis
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps


class Channel(filesystem.Channel):
    def _put(self, queue: str, payload: Any, **kwargs: Any) -> None:
        """Put `payload` onto `queue`: written under a temporary name, then renamed (kombu's name scheme)."""
        name = f"{int(round(monotonic() * 1000))}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        partial = final + ".part"
        try:
            with open(partial, "wb") as handle:
                handle.write(str_to_bytes(dumps(payload)))
            os.replace(partial, final)
        except OSError as exc:
            raise ChannelError(f"Cannot add file {final!r} to directory") from exc


class Transport(filesystem.Transport):
    Channel = Channel


class RedisChannel(redis.Channel):
    """kombu's Redis channel, keeping one client object instead of making one for every command.

    kombu builds a new `redis.Redis` around the channel's connection pool for each publish, and in
    a worker for each delivery and acknowledgement; building one (its table of response callbacks)
    cost 116 us here, as much as the LPUSH it is made for. The client is replaced whenever kombu
    replaces the pool (after a fork, on close); a connection the server dropped is replaced by the
    pool itself, as before. A client over a pool is safe to share between threads (redis-py hands
    each command a connection of its own from the pool).
    """

    _kept_client: Any = None

    def _create_client(self, asynchronous: bool = False) -> Any:
        if asynchronous:
            return super()._create_client(asynchronous=True)
        kept = self._kept_client
        if kept is None or kept.connection_pool is not self.pool:
            kept = self._kept_client = super()._create_client()
        return kept


class RedisTransport(redis.Transport):
    """`CELERY_BROKER_TRANSPORT` wherever the broker is `redis://` (settings)."""

    Channel = RedisChannel
