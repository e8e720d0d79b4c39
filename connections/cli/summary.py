"""What `make run` says last, once the site answers: where, who, the first password, how to stop.

`workers setup` creates the first admin user in another process; it leaves the password in a file
readable by this user only, which the summary reads and deletes, so the password is shown at the
end of the first run (where it is not lost among the servers' lines) and never again.
"""

from __future__ import annotations

import os
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model

from ..conf import app_settings


def first_password_file() -> Path:
    return Path(settings.RUN_DIR) / "first-admin-password"


def remember_first_password(username: str, password: str) -> None:
    """Keep the new admin's password for the summary (mode 0600, deleted once shown)."""
    path = first_password_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(f"{username}\n{password}\n")


def _take_first_password() -> tuple[str, str] | None:
    path = first_password_file()
    try:
        username, password = path.read_text().splitlines()[:2]
    except (FileNotFoundError, ValueError):
        return None
    finally:
        path.unlink(missing_ok=True)
    return username, password


def summary_lines(served_at: str) -> list[str]:
    """The summary's lines; the first password is in them once, on the run that created the user."""
    admin_url = f"{app_settings.PUBLIC_URL}/admin/"
    lines = [f"Ready: {admin_url}" + ("" if app_settings.PUBLIC_URL == served_at else f" (serving on {served_at})")]
    first = _take_first_password()
    if first:
        lines.append(f"Log in as {first[0]} with password {first[1]} (shown this once; keep it).")
    else:
        admin = get_user_model().objects.filter(is_superuser=True).order_by("pk").first()
        name = admin.get_username() if admin else "admin"
        lines.append(
            f"Log in as {name} (the password was shown on the first run; "
            f"reset it with `.venv/bin/python manage.py changepassword {name}`)."
        )
    lines.append("Commands: ./workers --help (in another terminal; PUBLIC_URL comes from .env)")
    lines.append("Stop: Ctrl-C stops the web server, the Celery worker and beat.")
    return lines
