"""`make run`'s closing summary: the URL, the admin user, its password on the first run only, how to stop."""

from __future__ import annotations

import re

SUMMARY = "from connections.cli.summary import summary_lines; print(*summary_lines('http://127.0.0.1:8431'), sep='\\n')"


def test_the_first_summary_shows_the_password_setup_made_and_later_ones_do_not(manage):
    setup = manage("workers", "setup", "--username", "boss", PUBLIC_URL="http://127.0.0.1:8431")
    assert setup.returncode == 0, setup.stderr
    password = re.search(r"Created admin user 'boss' with password (\S+) ", setup.stdout).group(1)

    first = manage("shell", "-v", "0", "-c", SUMMARY, PUBLIC_URL="http://127.0.0.1:8431")
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines() == [
        "Ready: http://127.0.0.1:8431/admin/",
        f"Log in as boss with password {password} (shown this once; keep it).",
        "Commands: ./workers --help (in another terminal; PUBLIC_URL comes from .env)",
        "Stop: Ctrl-C stops the web server, the Celery worker and beat.",
    ]

    again = manage("shell", "-v", "0", "-c", SUMMARY, PUBLIC_URL="http://127.0.0.1:8431")
    assert password not in again.stdout
    assert again.stdout.splitlines()[1] == (
        "Log in as boss (the password was shown on the first run; "
        "reset it with `.venv/bin/python manage.py changepassword boss`)."
    )


def test_a_public_url_elsewhere_is_shown_with_where_it_serves(manage):
    done = manage("shell", "-v", "0", "-c", SUMMARY, PUBLIC_URL="https://workers.example.test")
    assert (
        done.stdout.splitlines()[0] == "Ready: https://workers.example.test/admin/ (serving on http://127.0.0.1:8431)"
    )
