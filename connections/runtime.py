"""Runtime state of this process, read by the SDK, the OAuth session, the pacers and the runner alike.

It lives below all of them (it imports nothing of the package), so none of them needs another
to know whether worker code is running with `--local`.
"""

from __future__ import annotations

import contextvars
import gc
import os
from collections.abc import Iterator
from contextlib import contextmanager

# Set while worker code runs with `--local`: a pulled .env then supplies its tokens.
_local: contextvars.ContextVar[bool] = contextvars.ContextVar("workers_local_mode", default=False)
# The same variable under its historical name (tests and callers that set it directly).
local_mode = _local


def is_local() -> bool:
    """Whether the code running now is a `--local` run."""
    return _local.get()


@contextmanager
def running_locally(local: bool) -> Iterator[None]:
    """Mark the code run inside as local (or not), for this thread or task only."""
    token = _local.set(local)
    try:
        yield
    finally:
        _local.reset(token)


def oauth_env_name(capability_name: str) -> str:
    """The SDK's variable name for a capability's token: OAUTH_<HEX OF THE NAME>_ACCESS_TOKEN."""
    return f"OAUTH_{capability_name.encode().hex().upper()}_ACCESS_TOKEN"


def pulled_token(capability_name: str) -> str | None:
    """The local-mode rule, in one place: a `--local` run uses the token `workers env pull` wrote.

    Such a token cannot be refreshed from here (the site holds the refresh token): None outside a
    local run or when the environment has none, and then the stored connection is used.
    """
    if not _local.get():
        return None
    return os.environ.get(oauth_env_name(capability_name)) or None


def settle_heap() -> None:
    """Leave what this process has built so far (Django, the site, worker code) out of later garbage
    collections.

    Python's full collection walks every tracked object, a few hundred thousand once Django and the
    worker code are loaded. A sync page's records outlive the young collections and bring on a full
    one every dozen pages or so: 50-60 ms each, 10-15% of a sync's time. Frozen, the process's
    long-lived objects are skipped (`gc.freeze`); a forked pool process inherits them frozen, and
    its collections no longer write to the pages it shares with its parent. Garbage made so far is
    collected first, so none is kept for ever.
    """
    gc.collect()
    gc.freeze()


@contextmanager
def settled_heap() -> Iterator[None]:
    """The process's objects frozen while a command runs in a process that goes on after it (a test's,
    or the shell's of `call_command`), and unfrozen at the end, so that whatever was alive then can be
    collected again. Without settle_heap's collection first: it cost each `workers exec --local` about
    60 ms, and what is unfrozen at the end is collected as usual (freezing and unfreezing cost nothing
    of note). Nothing is done in a process already settled (a Celery worker's): its objects stay frozen."""
    if gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
