"""The one reader of `.env` lines, as django-environ reads them: `NAME=value`, `export NAME=value`, comments.

Importable without Django settings (the first-run writer uses it before any key exists).
"""

from __future__ import annotations

import re

# django-environ's own rule (Env.read_env): a line it reads is exactly this; it skips every other.
_LINE = re.compile(r"\A(?:export )?([A-Za-z_0-9]+)=")


def name_of(line: str) -> str | None:
    """The variable a `.env` line sets, or None for a comment, a blank or anything else."""
    match = _LINE.match(line)
    return match.group(1) if match else None


def names_in(text: str) -> set[str]:
    """Every variable a `.env` file's text sets."""
    return {name for line in text.splitlines() if (name := name_of(line)) is not None}
