"""First run: write `.env` with a generated SECRET_KEY and FIELD_ENCRYPTION_KEY (mode 0600).

Runs without Django settings, because settings refuse to load without a key.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
from pathlib import Path

from cryptography.fernet import Fernet

from connections.dotenv import names_in


def ensure_env_file(path: Path) -> list[str]:
    """Add the missing keys to `path`, creating it with mode 0600; return the names added."""
    existing = path.read_text() if path.exists() else ""
    names = names_in(existing)  # as settings will read the file (`export NAME=` lines too)
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


def public_url(path: Path, host: str, port: str) -> str:
    """PUBLIC_URL from the environment, else from `path`, else the address `make run` serves on."""
    import environ

    # django-environ parses the file as settings will (quotes, `export`); the environment wins.
    environ.Env.read_env(path)
    return os.environ.get("PUBLIC_URL") or f"http://{host}:{port}"


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m workers_site.envfile", description=__doc__)
    parser.add_argument("--file", type=Path, default=Path(__file__).resolve().parent.parent / ".env")
    parser.add_argument("--public-url", nargs=2, metavar=("HOST", "PORT"), help="print the PUBLIC_URL in effect")
    args = parser.parse_args(argv)
    if args.public_url:
        print(public_url(args.file, *args.public_url))
        return
    written = ensure_env_file(args.file)
    if written:
        print(
            f"Wrote {', '.join(written)} to {args.file} (mode 0600). Keep a copy of FIELD_ENCRYPTION_KEY: "
            "without it stored secrets and tokens cannot be read."
        )


if __name__ == "__main__":
    main(sys.argv[1:])
