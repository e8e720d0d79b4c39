"""`workers keys rotate` and `workers keys check`."""

from __future__ import annotations

from typing import Any

from ..crypto import assert_every_value_readable, rotate_keys


def add_arguments(subparsers: Any) -> None:
    keys = subparsers.add_parser("keys", help="encryption keys")
    sub = keys.add_subparsers(dest="keys_command", required=True)
    p = sub.add_parser("rotate", help="re-encrypt every stored secret and token with the first key")
    p.set_defaults(handler=handle_rotate)
    p = sub.add_parser(
        "check", help="decrypt every stored secret and token (start-up only samples them): run before dropping a key"
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
