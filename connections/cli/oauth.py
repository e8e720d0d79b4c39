"""`workers oauth show-redirect-url | start | status | refresh | disconnect`.

Text that may come from a provider (errors, descriptions) goes through `printable()` before it
reaches the terminal.
"""

from __future__ import annotations

import time
import webbrowser
from typing import Any

from django.core.management.base import CommandError

from ..conf import app_settings
from ..exceptions import AuthorizationError, WorkersError
from ..models import AuthorizationAttempt, Connection, Health, OAuthCapability
from ..oauth.flow import start_authorization
from ..oauth.tokens import disconnect, refresh_connection
from ..text import describe_time, printable
from . import add_command, add_worker_option, positive_seconds, resolve_worker


def add_arguments(subparsers: Any) -> None:
    oauth = add_command(
        subparsers,
        "oauth",
        help="OAuth connections",
        description=(
            "Connect a worker's OAuth capabilities to their providers (the authorization-code flow) and\n"
            "look after the tokens. The admin's Connect button does the same as `oauth start`."
        ),
        example_lines=[
            "python manage.py workers oauth show-redirect-url",
            "python manage.py workers oauth start githubAuth",
            "python manage.py workers oauth status",
        ],
    )
    sub = oauth.add_subparsers(dest="oauth_command", required=True, metavar="SUBCOMMAND")
    p = add_command(
        sub,
        "show-redirect-url",
        help="the redirect URL to register with providers",
        description=(
            "Print the one redirect (callback) URL to register with every provider's OAuth app:\n"
            "PUBLIC_URL + /oauth/callback/. Set PUBLIC_URL to the address your browser reaches the site at."
        ),
        example_lines=[
            "python manage.py workers oauth show-redirect-url",
            "PUBLIC_URL=https://workers.example.com python manage.py workers oauth show-redirect-url",
        ],
    )
    p.set_defaults(handler=handle_show_redirect_url)
    p = add_command(
        sub,
        "start",
        help="print the authorization URL and wait for the callback",
        description=(
            "Print the provider's authorization URL (and open it in a browser unless --no-browser),\n"
            "then wait until the provider redirects back and the tokens are stored, or the flow fails.\n"
            "The site must be running at PUBLIC_URL to receive the callback. Ctrl-C stops waiting."
        ),
        example_lines=[
            "python manage.py workers oauth start sandboxAuth",
            "python manage.py workers oauth start githubAuth --worker github --no-browser --timeout 120",
        ],
    )
    add_worker_option(p)
    p.add_argument("key", metavar="KEY", help="the capability's key, as in worker.oauth(KEY, ...), e.g. githubAuth")
    p.add_argument("--no-browser", action="store_true", help="only print the URL; do not open a browser")
    p.add_argument("--timeout", type=positive_seconds, default=600, help="seconds to wait for the callback")
    p.set_defaults(handler=handle_start)
    p = add_command(
        sub,
        "status",
        help="every capability: connected or not, expiry, last refresh, last error",
        description="Every active capability: connected or not, when its token expires, its last refresh and error.",
        example_lines=[
            "python manage.py workers oauth status",
            "python manage.py workers oauth status --worker github",
        ],
    )
    add_worker_option(p)
    p.set_defaults(handler=handle_status)
    p = add_command(
        sub,
        "refresh",
        help="force a token refresh",
        description=(
            "Refresh the capability's access token now, even if it is still valid, and print when the\n"
            "new one expires. A refusal by the provider says to reconnect."
        ),
        example_lines=["python manage.py workers oauth refresh githubAuth"],
    )
    add_worker_option(p)
    p.add_argument("key", metavar="KEY", help="the capability's key, e.g. githubAuth")
    p.set_defaults(handler=handle_refresh)
    p = add_command(
        sub,
        "disconnect",
        help="forget the tokens (revoking them where the provider supports it)",
        description=(
            "Revoke the capability's tokens at the provider where it supports revocation, then forget\n"
            "them. Its secrets are kept; `oauth start` connects it again."
        ),
        example_lines=["python manage.py workers oauth disconnect githubAuth"],
    )
    add_worker_option(p)
    p.add_argument("key", metavar="KEY", help="the capability's key, e.g. githubAuth")
    p.set_defaults(handler=handle_disconnect)


def _capability(options: dict[str, Any]) -> OAuthCapability:
    worker = resolve_worker(options.get("worker"), key=options["key"], model=OAuthCapability, kind="OAuth capability")
    capability = OAuthCapability.objects.select_related("worker").filter(worker=worker, key=options["key"]).first()
    if capability is None:
        raise CommandError(f"Worker {worker.slug} has no OAuth capability {options['key']!r}.")
    return capability


def handle_show_redirect_url(command: Any, options: dict[str, Any]) -> None:
    command.stdout.write(app_settings.REDIRECT_URL)


def handle_start(command: Any, options: dict[str, Any]) -> None:
    capability = _capability(options)
    try:
        started = start_authorization(capability, origin=AuthorizationAttempt.Origin.CLI)
    except AuthorizationError as exc:
        raise CommandError(printable(str(exc))) from None
    command.stdout.write(f"Open this URL to authorize {capability.key}:\n{started.url}")
    command.stdout.flush()
    if not options["no_browser"]:
        try:
            webbrowser.open(started.url)
        except webbrowser.Error:
            pass
    command.stdout.write(f"Waiting for the callback at {app_settings.REDIRECT_URL} (Ctrl-C to stop)...")
    command.stdout.flush()
    deadline = time.monotonic() + options["timeout"]
    while time.monotonic() < deadline:
        attempt = AuthorizationAttempt.objects.get(pk=started.attempt.pk)
        if attempt.status == AuthorizationAttempt.Status.SUCCEEDED:
            command.stdout.write(command.style.SUCCESS(f"Connected {capability.key}."))
            return
        if attempt.status == AuthorizationAttempt.Status.FAILED:
            raise CommandError(printable(attempt.error))  # the provider's words: escaped
        time.sleep(0.5)
    raise CommandError(
        f"No callback within {options['timeout']:g} s; run `workers oauth start {capability.key}` again."
    )


def handle_status(command: Any, options: dict[str, Any]) -> None:
    capabilities = OAuthCapability.objects.select_related("worker", "connection").filter(is_active=True)
    if options.get("worker"):
        capabilities = capabilities.filter(worker=resolve_worker(options["worker"]))
    rows = [("CAPABILITY", "STATUS", "EXPIRES", "LAST REFRESH", "LAST ERROR")]
    for capability in capabilities:
        try:
            conn: Connection | None = capability.connection
        except Connection.DoesNotExist:
            conn = None
        state = Health(Connection.health_of(conn))
        expires = "-"
        if conn is not None and state != Health.NOT_CONNECTED:
            expires = describe_time(conn.expires_at) if conn.expires_at else "unknown"
        rows.append(
            (
                f"{capability.worker.slug}:{capability.key}",
                str(state.label),
                expires,
                describe_time(conn.last_refreshed_at) if conn and conn.last_refreshed_at else "-",
                printable(conn.last_error if conn and conn.last_error else "-")[:120],
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        command.stdout.write("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:4])) + "  " + row[4])


def handle_refresh(command: Any, options: dict[str, Any]) -> None:
    capability = _capability(options)
    conn, _ = Connection.objects.get_or_create(capability=capability)
    try:
        refresh_connection(conn.pk, force=True)
    except WorkersError as exc:
        raise CommandError(printable(str(exc))) from None  # may quote the provider's error_description
    conn.refresh_from_db(fields=["expires_at"])
    expires = describe_time(conn.expires_at) if conn.expires_at else "unknown"
    command.stdout.write(command.style.SUCCESS(f"Refreshed {capability.key}; the new token expires {expires}."))


def handle_disconnect(command: Any, options: dict[str, Any]) -> None:
    capability = _capability(options)
    conn, _ = Connection.objects.get_or_create(capability=capability)
    for problem in disconnect(conn.pk):
        command.stderr.write(command.style.WARNING(printable(problem)))
    command.stdout.write(command.style.SUCCESS(f"Disconnected {capability.key}; its tokens were forgotten."))
