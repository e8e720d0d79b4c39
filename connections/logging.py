"""A logging filter that blanks credentials in query strings and form bodies of log lines."""

from __future__ import annotations

import logging
import re

_SENSITIVE = re.compile(
    r"(?i)\b(code|state|access_token|refresh_token|id_token|client_secret|code_verifier|password|token)=([^&\s\"']+)"
)


def redact(text: str) -> str:
    return _SENSITIVE.sub(lambda m: f"{m.group(1)}=[redacted]", text)


class RedactSecretsFilter(logging.Filter):
    """The development server logs request lines such as /oauth/callback/?code=...&state=...."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string is not ours to fix here
            return True
        cleaned = redact(message)
        if cleaned != message:
            record.msg = cleaned
            record.args = None
        return True
