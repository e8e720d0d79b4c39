"""Text from outside (a provider's error, a description it echoes) made safe to print on a terminal,
and record keys made to sort as people expect."""

from __future__ import annotations

import re

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


_DIGITS = re.compile(r"\d+")
SORT_KEY_LENGTH = 1000


def _number(match: re.Match[str]) -> str:
    digits = match.group().lstrip("0") or "0"
    # Its length first, so a longer number sorts after a shorter one: "9" < "10" as text too.
    return f"{min(len(digits), 999):03d}{digits}"


def natural_sort_key(text: str) -> str:
    """`text` with each run of digits prefixed by its length: sorted as text, "2" comes before "10"
    and "item 9" before "item 10", in SQL (an indexed column) as in Python."""
    return _DIGITS.sub(_number, str(text))[:SORT_KEY_LENGTH]
