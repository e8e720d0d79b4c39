"""`workers keys rotate` and `workers keys check`."""

from __future__ import annotations

from typing import Any

from ..crypto import assert_every_value_readable, rotate_keys
from . import add_command

_ROTATE = (
    'FIELD_ENCRYPTION_KEY="NEW_KEY,OLD_KEY" python manage.py workers keys rotate',
    "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'  # a new key",
)


def add_arguments(subparsers: Any) -> None:
    keys = add_command(
        subparsers,
        "keys",
        help="encryption keys",
        description="The Fernet keys in FIELD_ENCRYPTION_KEY that encrypt stored secrets and tokens.",
        example_lines=_ROTATE,
    )
    sub = keys.add_subparsers(dest="keys_command", required=True, metavar="SUBCOMMAND")
    p = add_command(
        sub,
        "rotate",
        help="re-encrypt every stored secret and token with the first key",
        description=(
            "Put a new key first in FIELD_ENCRYPTION_KEY (comma-separated; the first encrypts, all\n"
            "decrypt), run this to re-encrypt every stored secret and token with it, then remove the\n"
            "old keys from FIELD_ENCRYPTION_KEY."
        ),
        example_lines=_ROTATE,
    )
    p.set_defaults(handler=handle_rotate)
    p = add_command(
        sub,
        "check",
        help="decrypt every stored secret and token (start-up only samples them): run before dropping a key",
        description=(
            "Decrypt every stored secret and token with FIELD_ENCRYPTION_KEY. Start-up checks a key canary\n"
            "and a bounded sample only; run this after `keys rotate` and before removing an old key."
        ),
        example_lines=['FIELD_ENCRYPTION_KEY="NEW_KEY" python manage.py workers keys check'],
    )
    p.set_defaults(handler=handle_check)


def handle_check(command: Any, options: dict[str, Any]) -> None:
    assert_every_value_readable()
    command.stdout.write(command.style.SUCCESS("Every stored secret and token can be read with FIELD_ENCRYPTION_KEY."))


def handle_rotate(command: Any, options: dict[str, Any]) -> None:
    counts = rotate_keys()
    for label, rows in sorted(counts.items()):
        if rows:
            command.stdout.write(f"{label}: {rows} value(s) re-encrypted")
    command.stdout.write(
        command.style.SUCCESS(
            f"Re-encrypted {sum(counts.values())} value(s) with the first FIELD_ENCRYPTION_KEY; older keys may now be removed."
        )
    )
