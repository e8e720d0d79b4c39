"""`workers setup`: first-run chores for `make run` (first admin user, sandbox provider app)."""

from __future__ import annotations

import secrets
from typing import Any

from django.contrib.auth import get_user_model

from ..conf import app_settings
from . import add_command
from .summary import remember_first_password


def add_arguments(subparsers: Any) -> None:
    p = add_command(
        subparsers,
        "setup",
        help="create the first admin user and the sandbox provider's app",
        description=(
            "First-run chores (`make run` does them): create an admin user with a random password,\n"
            "shown once, unless one exists; with SANDBOX_PROVIDER on, register the sandbox provider's\n"
            "app and store its client id and secret for the sandbox worker. Safe to run again."
        ),
        example_lines=["python manage.py workers setup", "python manage.py workers setup --username alice"],
    )
    p.add_argument("--username", default="admin", help="the admin user to create when there is none")
    p.set_defaults(handler=handle)


def handle(command: Any, options: dict[str, Any]) -> None:
    User = get_user_model()
    if not User.objects.filter(is_superuser=True).exists():
        password = secrets.token_urlsafe(12)
        User.objects.create_superuser(options["username"], "", password)
        remember_first_password(options["username"], password)
        command.stdout.write(
            command.style.SUCCESS(
                f"Created admin user {options['username']!r} with password {password} "
                f"(shown once; change it with `python manage.py changepassword {options['username']}`)."
            )
        )
    else:
        command.stdout.write("An admin user exists already (reset a password with `python manage.py changepassword`).")
    if app_settings.SANDBOX_PROVIDER:
        from sandbox.setup import setup_sandbox

        result = setup_sandbox()
        command.stdout.write(result)
    command.stdout.write(f"Log in at {app_settings.PUBLIC_URL}/admin/")
