"""Set-up steps the many-machines tests run in a process of their own, against the cluster's database.

`python -m tests.multihost.driver COMMAND ...` with the cluster's DATABASE_URL: the test process
itself runs on the suite's own test database, so everything that touches the cluster's goes
through a subprocess, as a second machine would. Each command prints one JSON line.
"""

from __future__ import annotations

import json
import sys
from datetime import timedelta

import django


def main(argv: list[str]) -> None:
    django.setup()
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from connections.deploy import deploy
    from connections.models import Connection, OAuthCapability, Run, Sync
    from connections.oauth.client import TokenResponse
    from connections.oauth.tokens import store_tokens
    from connections.runner.syncs import start_sync, sync_row
    from connections.runner.tools import start_tool
    from connections.secrets import set_secrets
    from tests.oauth.fake_provider import CLIENT_ID, CLIENT_SECRET

    command, *args = argv
    if command == "setup":
        admin, password = args
        get_user_model().objects.create_superuser(admin, f"{admin}@example.test", password)
        deploy()
        set_secrets("multihost", {"FAKE_CLIENT_ID": CLIENT_ID, "FAKE_CLIENT_SECRET": CLIENT_SECRET})
        out: object = "ok"
    elif command == "expired-token":
        # A connection as the authorization flow leaves it, whose access token has since expired.
        (refresh_token,) = args
        capability = OAuthCapability.objects.get(worker__slug="multihost", key="multihostAuth")
        conn, _ = Connection.objects.get_or_create(capability=capability)
        store_tokens(
            conn,
            TokenResponse(
                access_token="at-expired",
                refresh_token=refresh_token,
                token_type="bearer",
                scope="read",
                expires_at=timezone.now() - timedelta(minutes=5),
            ),
            refreshed=False,
        )
        Run.objects.all().delete()
        out = conn.pk
    elif command == "tools":
        count, seconds = int(args[0]), float(args[1])
        out = [start_tool("multihost", "work", {"n": n, "seconds": seconds}, trigger="test").pk for n in range(count)]
    elif command == "sync":
        sync = sync_row("multihost", "pages")
        Sync.objects.filter(pk=sync.pk).update(running_run=None)
        out = start_sync(sync, trigger="test").pk
    else:
        raise SystemExit(f"unknown command {command!r}")
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1:])
