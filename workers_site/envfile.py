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

from connections.dotenv import name_of, names_in


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


# The line above a PUBLIC_URL that `make run` wrote: while it is there, `make run HOST=... PORT=...`
# keeps the URL in step with where it serves; deleting it pins the URL as set by hand.
MANAGED_MARK = "# PUBLIC_URL below follows `make run HOST=... PORT=...`; delete this line to keep your own value."


def public_url(path: Path, host: str, port: str) -> str:
    """PUBLIC_URL from the environment, else from `path`, else the address `make run` serves on."""
    import environ

    # django-environ parses the file as settings will (quotes, `export`); the environment wins.
    environ.Env.read_env(path)
    return os.environ.get("PUBLIC_URL") or f"http://{host}:{port}"


def keep_public_url(path: Path, host: str, port: str) -> str:
    """The PUBLIC_URL `make run` serves at, written into `path` so later shells use it too; returns it.

    The environment wins and is not written. A PUBLIC_URL set in the file by hand is kept; one that
    `make run` wrote (the line under MANAGED_MARK) follows HOST and PORT.
    """
    served = f"http://{host}:{port}"
    if os.environ.get("PUBLIC_URL"):
        return os.environ["PUBLIC_URL"]
    lines = path.read_text().splitlines() if path.exists() else []
    for i, line in enumerate(lines):
        if name_of(line) == "PUBLIC_URL":
            if i == 0 or lines[i - 1] != MANAGED_MARK:
                return public_url(path, host, port)
            lines[i] = f"PUBLIC_URL={served}"
            break
    else:
        lines += [MANAGED_MARK, f"PUBLIC_URL={served}"]
    _write(path, "\n".join(lines) + "\n")
    return served


def _write(path: Path, text: str) -> None:
    # Replaced whole and never readable by others: the file holds the encryption key.
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)
    os.chmod(path, 0o600)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m workers_site.envfile", description=__doc__)
    parser.add_argument("--file", type=Path, default=Path(__file__).resolve().parent.parent / ".env")
    parser.add_argument("--public-url", nargs=2, metavar=("HOST", "PORT"), help="print the PUBLIC_URL in effect")
    parser.add_argument(
        "--keep-public-url",
        nargs=2,
        metavar=("HOST", "PORT"),
        help="write the URL `make run` serves at into the file unless PUBLIC_URL is set by hand; print it",
    )
    args = parser.parse_args(argv)
    if args.public_url:
        print(public_url(args.file, *args.public_url))
        return
    if args.keep_public_url:
        print(keep_public_url(args.file, *args.keep_public_url))
        return
    written = ensure_env_file(args.file)
    if written:
        print(
            f"Wrote {', '.join(written)} to {args.file} (mode 0600). Keep a copy of FIELD_ENCRYPTION_KEY: "
            "without it stored secrets and tokens cannot be read."
        )


if __name__ == "__main__":
    main(sys.argv[1:])
