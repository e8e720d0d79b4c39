"""`workers oauth show-redirect-url | start | status | refresh | disconnect`."""

from __future__ import annotations

from typing import Any

from ..conf import app_settings


def add_arguments(subparsers: Any) -> None:
    oauth = subparsers.add_parser("oauth", help="OAuth connections")
    sub = oauth.add_subparsers(dest="oauth_command", required=True)
    p = sub.add_parser("show-redirect-url", help="the redirect URL to register with providers")
    p.set_defaults(handler=handle_show_redirect_url)


def handle_show_redirect_url(command: Any, options: dict[str, Any]) -> None:
    command.stdout.write(app_settings.REDIRECT_URL)
