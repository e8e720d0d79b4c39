"""Text for people: text from outside (a provider's error) made safe to print, times told relative to now,
and record keys made to sort as people expect."""

from __future__ import annotations

import re
from datetime import datetime

from django.utils import timezone
from django.utils.timesince import timesince, timeuntil

# C0 and C1 control characters (ESC starts the sequences that recolour, retitle or rewrite a
# terminal; C1's CSI does the same in some), DEL, and the bidirectional overrides and isolates
# that make text display in another order than it reads.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    """`text` with control characters written as escapes (`\\x1b`), so printing it cannot drive the terminal.

    Idempotent: the escapes it writes are plain characters.
    """
    text = str(text)
    if text.isascii() and text.isprintable():
        return text
    return _UNPRINTABLE.sub(_escape, text)


def describe_time(value: datetime | None) -> str:
    """ "2026-11-27 04:46:50 UTC (in 4 minutes)" for pages and the command line."""
    if value is None:
        return "-"
    local = timezone.localtime(value)
    now = timezone.now()
    if abs((value - now).total_seconds()) < 60:
        relative = "just now" if value <= now else "in under a minute"
    else:
        relative = f"in {timeuntil(value, now)}" if value > now else f"{timesince(value, now)} ago"
    return f"{local:%Y-%m-%d %H:%M:%S %Z} ({relative})"


# Split, not sub with a function: a sync computes this for every record it writes, and a call per
# run of digits (with its match object) cost twice as much; the length prefixes are made once.
_DIGIT_RUNS = re.compile(r"(\d+)")
_LENGTH_PREFIXES = tuple(f"{n:03d}" for n in range(1000))
SORT_KEY_LENGTH = 1000


def natural_sort_key(text: str) -> str:
    """`text` with each run of digits prefixed by its length: sorted as text, "2" comes before "10"
    and "item 9" before "item 10", in SQL (an indexed column) as in Python."""
    parts = _DIGIT_RUNS.split(str(text))
    for index in range(1, len(parts), 2):
        digits = parts[index].lstrip("0") or "0"
        # Its length first, so a longer number sorts after a shorter one: "9" < "10" as text too.
        parts[index] = _LENGTH_PREFIXES[min(len(digits), 999)] + digits
    return "".join(parts)[:SORT_KEY_LENGTH]
