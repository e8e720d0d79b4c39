"""First run: write `.env` with a generated SECRET_KEY and FIELD_ENCRYPTION_KEY (mode 0600).

Runs without Django settings, because settings refuse to load without a key.
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

from cryptography.fernet import Fernet


def ensure_env_file(path: Path) -> list[str]:
    """Add the missing keys to `path`, creating it with mode 0600; return the names added."""
    existing = path.read_text() if path.exists() else ""
    names = {line.split("=", 1)[0].strip() for line in existing.splitlines() if "=" in line}
    added: list[str] = []
    lines: list[str] = []
    if "SECRET_KEY" not in names and not os.environ.get("SECRET_KEY"):
        lines.append(f"SECRET_KEY={secrets.token_urlsafe(50)}")
        added.append("SECRET_KEY")
    if "FIELD_ENCRYPTION_KEY" not in names and not os.environ.get("FIELD_ENCRYPTION_KEY"):
        lines.append(f"FIELD_ENCRYPTION_KEY={Fernet.generate_key().decode()}")
        added.append("FIELD_ENCRYPTION_KEY")
    if "SANDBOX_PROVIDER" not in names and not os.environ.get("SANDBOX_PROVIDER"):
        lines.append("SANDBOX_PROVIDER=true")
        added.append("SANDBOX_PROVIDER")
    if lines:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "a") as fh:
            if existing and not existing.endswith("\n"):
                fh.write("\n")
            fh.write("\n".join(lines) + "\n")
    os.chmod(path, 0o600)
    return added


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent / ".env"
    written = ensure_env_file(target)
    if written:
        print(
            f"Wrote {', '.join(written)} to {target} (mode 0600). Keep a copy of FIELD_ENCRYPTION_KEY: "
            "without it stored secrets and tokens cannot be read."
        )
