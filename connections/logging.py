"""The one redaction of the site: credential patterns and the secret values this process has seen, in every log line.

`redact(text)` is what every writer of text calls (log lines, a run's stored log and error,
exception messages). It blanks `key=value` credentials (a callback's `code=` and `state=`),
`Bearer`/`Basic` headers, and every secret or token value this process has decrypted or
encrypted (`remember()`, called by the encrypted fields), so a value that worker code logs in
free text is blanked too. `RedactSecretsFilter` applies it to log records; `install()` puts the
filter on every handler configured so far (Django's `django.server`, Celery's worker and task
handlers, a WSGI server's access log), and `configure()` is Django's LOGGING_CONFIG that does so.
"""

from __future__ import annotations

import logging
import logging.config
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

_SENSITIVE = re.compile(
    r"(?i)\b(code|state|access_token|refresh_token|id_token|client_secret|code_verifier|password|token)=([^&\s\"']+)"
)
_BEARER = re.compile(r"(?i)\b(bearer|token|basic)\s+[A-Za-z0-9._~+/=-]{8,}")
# Shorter values are too likely to be ordinary words or numbers: blanking them would garble logs.
MIN_SECRET_LENGTH = 6
_DEFAULT_LIMIT = 1000


class _SeenValues:
    """A bounded, process-wide set of sensitive values; the least recently seen ones go first."""

    def __init__(self) -> None:
        self._values: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()
        self._longest_first: tuple[str, ...] = ()

    def add(self, values: Iterable[Any]) -> None:
        fresh = [v for v in values if isinstance(v, str) and len(v) >= MIN_SECRET_LENGTH]
        if not fresh:
            return
        for seen in _collectors:  # a tuple, replaced whole: no lock on this hot path
            seen.gather(fresh)
        with self._lock:
            changed = False
            for value in fresh:
                if value in self._values:
                    self._values.move_to_end(value)
                    continue
                self._values[value] = None
                changed = True
            if not changed:
                return  # the hot path: a token read again is already remembered
            limit = _limit()
            while len(self._values) > limit:
                self._values.popitem(last=False)
            # Longest first, so a token that contains another value is blanked whole.
            self._longest_first = tuple(sorted(self._values, key=len, reverse=True))

    def values(self) -> tuple[str, ...]:
        return self._longest_first

    def clear(self) -> None:
        with self._lock:
            self._values.clear()
            self._longest_first = ()


_seen = _SeenValues()


class Collected(set[str]):
    """Values remembered while a `collecting()` block ran; `overflowed` once it stopped at COLLECT_LIMIT."""

    overflowed = False

    def gather(self, values: list[str]) -> None:
        if len(self) + len(values) > COLLECT_LIMIT:
            self.overflowed = True
        else:
            self.update(values)


# A run's own values are a handful; a web process decrypting thousands of others meanwhile (an
# admin page) must not grow a long run's set without bound: past this, its owner reads instead.
COLLECT_LIMIT = 10_000
# The sets `collecting()` has open: every value remembered meanwhile, in any thread of the process.
_collectors: tuple[Collected, ...] = ()
_collectors_lock = threading.Lock()


def _forget_after_fork() -> None:
    # A forked child runs none of its parent's blocks, and the lock may have been held at the fork.
    global _collectors, _collectors_lock
    _collectors, _collectors_lock = (), threading.Lock()


os.register_at_fork(after_in_child=_forget_after_fork)


def _limit() -> int:
    try:
        from .conf import app_settings

        return max(0, app_settings.LOG_REDACT_MAX_VALUES)
    except Exception:  # settings not configured yet (a log line at import time): keep the default bound
        return _DEFAULT_LIMIT


def remember(*values: Any) -> None:
    """Blank these values (non-strings and short ones are ignored) in every later log line of this process."""
    _seen.add(values)


@contextmanager
def collecting() -> Iterator[Collected]:
    """A set that gathers every value `remember()`ed while the block runs (in any thread of the process).

    Not bounded by `WORKERS_LOG_REDACT_MAX_VALUES`, as the process's own set is: what a run's code
    was handed (a secret read, a token decrypted or refreshed) stays known to its outcome's
    redaction, however many other values the process saw meanwhile. Values of other threads' work
    land here too: blanked, never shown. Past COLLECT_LIMIT values it stops gathering and says so
    (`overflowed`).
    """
    global _collectors
    found = Collected()
    with _collectors_lock:
        _collectors = (*_collectors, found)
    try:
        yield found
    finally:
        with _collectors_lock:
            _collectors = tuple(c for c in _collectors if c is not found)


def forget_all() -> None:
    """Drop every remembered value (tests; a process that wants a clean slate)."""
    _seen.clear()


def redact(
    text: str, values: Iterable[str] = (), *, min_length: int = MIN_SECRET_LENGTH, only_values: bool = False
) -> str:
    """`text` with credentials blanked: remembered values, `values`, bearer headers, `key=value` pairs.

    The one redaction helper: log lines, a run's stored text (with the worker's secrets as `values`)
    and a provider's error text (`only_values`: what we sent it, down to a short authorization
    code; its own words, "token response", are no bearer header, and it never saw our other secrets).
    """
    if not text:
        return text
    extra = [v for v in values if v and len(v) >= min_length]
    for value in sorted(extra, key=len, reverse=True) if extra else ():
        text = text.replace(value, "[redacted]")
    if only_values:
        return text
    for value in _seen.values():
        if value in text:
            text = text.replace(value, "[redacted]")
    text = _BEARER.sub(lambda m: f"{m.group(1)} [redacted]", text)
    return _SENSITIVE.sub(lambda m: f"{m.group(1)}=[redacted]", text)


class RedactSecretsFilter(logging.Filter):
    """Blanks credentials in a record's message, its traceback and its stack before any handler writes it.

    Usable from any logging configuration, e.g. a gunicorn `logconfig_dict`:
    `"filters": {"redact": {"()": "connections.logging.RedactSecretsFilter"}}`.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string is not ours to fix here
            return True
        cleaned = redact(message)
        if cleaned != message:
            record.msg = cleaned
            record.args = None
        if record.exc_info and not record.exc_text:
            # Formatters cache the formatted traceback here; filling it first lets us clean it.
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


_FILTER = RedactSecretsFilter()


def install() -> None:
    """Put the filter on every handler of every logger configured so far (idempotent).

    Handlers, not loggers: a filter on a logger does not see records that propagate to it from
    a child logger, and libraries (Django's `django.server`, Celery) bring handlers of their own.
    """
    loggers: list[logging.Logger] = [logging.getLogger()]
    loggers += [lg for lg in list(logging.Logger.manager.loggerDict.values()) if isinstance(lg, logging.Logger)]
    for logger in loggers:
        for handler in list(logger.handlers):
            if not any(isinstance(f, RedactSecretsFilter) for f in handler.filters):
                handler.addFilter(_FILTER)


def console_config(log_format: str, **extra: Any) -> dict[str, Any]:
    """The one logging shape of every process: a console handler with the redaction filter, plain or JSON.

    The site's LOGGING and gunicorn's `logconfig_dict` both start from it; `extra` adds root/loggers.
    """
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"redact": {"()": "connections.logging.RedactSecretsFilter"}},
        "formatters": {
            "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
            "json": {"()": "connections.logging.JsonFormatter"},
        },
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": log_format,
                "filters": ["redact"],
                "stream": "ext://sys.stderr",
            },
        },
        **extra,
    }


def configure(config: dict[str, Any]) -> None:
    """Django's LOGGING_CONFIG: apply LOGGING, then redact on every handler, Django's own included."""
    logging.config.dictConfig(config)
    install()


# What every LogRecord has; anything else on a record came from `extra=` and goes into the JSON line.
_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """`LOG_FORMAT=json`: one JSON object per line (time, level, logger, message, `extra=` fields, traceback).

    The message and traceback were already cleaned by `RedactSecretsFilter` on the handler; the
    `extra=` fields, which the plain format never shows, are cleaned here, each string on its own.
    """

    def format(self, record: logging.LogRecord) -> str:
        import json
        from datetime import UTC, datetime

        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name, value in record.__dict__.items():
            if name in _RECORD_FIELDS or name.startswith("_") or name in line:
                continue
            line[name] = redact(value) if isinstance(value, str) else value
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(self.formatException(record.exc_info))
        if record.exc_text:
            line["exc_info"] = record.exc_text
        if record.stack_info:
            line["stack_info"] = record.stack_info
        return json.dumps(line, default=lambda value: redact(str(value)), ensure_ascii=False)


def use_format(name: str) -> None:
    """Give every handler configured so far the site's formatter for `name` (`json`); `plain` leaves them be.

    For the handlers Celery adds after Django configured logging (its task logger's, a --logfile's).
    """
    if name != "json":
        return
    formatter = JsonFormatter()
    loggers: list[logging.Logger] = [logging.getLogger()]
    loggers += [lg for lg in list(logging.Logger.manager.loggerDict.values()) if isinstance(lg, logging.Logger)]
    for logger in loggers:
        for handler in list(logger.handlers):
            if not isinstance(handler.formatter, JsonFormatter):
                handler.setFormatter(formatter)


__all__ = [
    "MIN_SECRET_LENGTH",
    "JsonFormatter",
    "RedactSecretsFilter",
    "configure",
    "forget_all",
    "install",
    "redact",
    "remember",
    "use_format",
]
