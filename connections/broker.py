"""The embedded broker: kombu's filesystem transport, with each message written whole before it is seen.

kombu's `_put` creates the message file under its final name, then writes it: a worker polling the
folder at that instant moved the empty file away, failed to decode it (JSONDecodeError) and its
consumer stopped for good, the message lost with it (seen once in this project's test suite: every
run queued after it waited in vain). Here a message is written under a name no worker takes (it
does not end in `.msg`) and then renamed to kombu's own name for it, which is atomic on one file
system. `CELERY_BROKER_TRANSPORT` names this transport wherever the broker is `filesystem://`.
"""

from __future__ import annotations

import os
import uuid
from time import monotonic
from typing import Any

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
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
