"""What a run keeps of its code: log output (bounded), the result (truncated), errors without credentials."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import sys
import threading
import traceback
from collections.abc import Iterable, Iterator
from typing import Any

from ..conf import app_settings
from ..jsondata import clean_text
from ..logging import MIN_SECRET_LENGTH, remember


class BoundedText(io.TextIOBase):
    """Keeps the first `limit` characters written and counts the rest."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._parts: list[str] = []
        self._size = 0
        self.dropped = 0
        self._lock = threading.Lock()

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        with self._lock:
            room = self.limit - self._size
            if room > 0:
                kept = text[:room]
                self._parts.append(kept)
                self._size += len(kept)
            self.dropped += max(0, len(text) - max(room, 0))
        return len(text)

    def getvalue(self) -> str:
        text = "".join(self._parts)
        if self.dropped:
            text += f"\n[{self.dropped} more characters of output not kept]\n"
        return text


class _ThreadHandler(logging.Handler):
    """Only the records of the thread running the code: a web server thread's lines are not the run's."""

    def __init__(self, sink: BoundedText) -> None:
        super().__init__(logging.INFO)
        self.sink = sink
        self.thread = threading.get_ident()
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread != self.thread:
            return
        try:
            self.sink.write(self.format(record) + "\n")
        except Exception:
            self.handleError(record)


class _Tee(io.TextIOBase):
    def __init__(self, *streams: Any) -> None:
        self.streams = streams

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        # A terminal cannot take a lone surrogate (the write would fail and the line be lost).
        shown = clean_text(text)
        for stream in self.streams:
            with contextlib.suppress(Exception):
                stream.write(shown)
        return len(text)

    def flush(self) -> None:
        for stream in self.streams:
            with contextlib.suppress(Exception):
                stream.flush()


@contextlib.contextmanager
def capture_output(limit: int | None = None, *, echo: bool = False) -> Iterator[BoundedText]:
    """Collect what the code logs (INFO and up) and prints, up to RUN_LOG_LIMIT characters."""
    sink = BoundedText(limit if limit is not None else app_settings.RUN_LOG_LIMIT)
    handler = _ThreadHandler(sink)
    root = logging.getLogger()
    root.addHandler(handler)
    # print() from the code: kept in the run, and still shown when a person runs it with --local.
    out = _Tee(sink, sys.stdout) if echo else sink
    err = _Tee(sink, sys.stderr) if echo else sink
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            yield sink
    finally:
        root.removeHandler(handler)


def known_secrets(worker_slug: str) -> list[str]:
    """Values that must never be stored in a run: the worker's secrets and its tokens."""
    from ..secrets import ciphertexts

    # One statement for the three columns, (ciphertext, capability name or ""); a dropped connection
    # raises (no empty list: nothing would be blanked, see runs.reconnecting).
    return known_values(ciphertexts(worker_slug))


def known_values(rows: Iterable[tuple[str | None, str]]) -> list[str]:
    """known_secrets() from rows already read (the claim reads them, see statements.claim_row):
    decrypted, long enough to blank, longest first."""
    from ..models import Secret
    from ..runtime import oauth_env_name

    # Every column holds the same kind of ciphertext: the field that decrypts one decrypts them all.
    field = Secret._meta.get_field("value")
    values: list[str] = []
    for ciphertext, capability in rows:
        try:
            values.append(field.from_db_value(ciphertext, None, None))
        except Exception:  # an undecryptable value cannot leak either; the others are still blanked
            pass
        pulled = os.environ.get(oauth_env_name(capability)) if capability else None
        if pulled:
            values.append(pulled)
    found = sorted({v for v in values if v and len(v) >= MIN_SECRET_LENGTH}, key=len, reverse=True)
    remember(*found)  # the worker process's own log blanks them too
    return found


def describe_error(exc: BaseException) -> tuple[str, str]:
    """(one-line message, traceback) of an exception, as a person reading the run needs them."""
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    line = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    from ..exceptions import WorkersError

    if isinstance(exc, WorkersError):
        line = message or line  # our messages are written to be read as they are
    return line, "".join(traceback.format_exception(exc))


def encode_result(value: Any) -> tuple[Any, bool]:
    """(value to store, truncated?). Over RUN_RESULT_LIMIT the JSON text is cut and kept as a string."""
    text = json.dumps(value, ensure_ascii=False)
    limit = app_settings.RUN_RESULT_LIMIT
    if len(text) <= limit:
        return value, False
    return text[:limit], True
