"""Registers the sandbox provider's application and stores its credentials as the sandbox worker's secrets."""

from __future__ import annotations

import secrets

from django.db import transaction
from oauth2_provider.models import get_application_model

from connections.conf import app_settings
from connections.models import OAuthCapability, Secret, Worker

APP_NAME = "Workers sandbox"
WORKER = "sandbox"
ITEM_COUNT = 25


def setup_sandbox(worker_slug: str = WORKER) -> str:
    """Idempotent; the redirect URI follows PUBLIC_URL. Returns a line to print."""
    from .models import SandboxItem

    Application = get_application_model()
    with transaction.atomic():
        worker, _ = Worker.objects.get_or_create(slug=worker_slug, defaults={"module": "examples.sandbox"})
        app = Application.objects.filter(name=APP_NAME).first()
        have_secret = Secret.objects.filter(worker=worker, name="SANDBOX_CLIENT_SECRET").exists()
        if app is None:
            app = Application(
                name=APP_NAME,
                client_type=Application.CLIENT_CONFIDENTIAL,
                authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE,
            )
        created = app.pk is None
        app.redirect_uris = app_settings.REDIRECT_URL
        if created or not have_secret:
            # DOT hashes the secret on save, so the plaintext exists only here and in the worker's secret.
            plaintext = secrets.token_urlsafe(32)
            app.client_secret = plaintext
            app.hash_client_secret = True
            app.save()
            Secret.objects.update_or_create(worker=worker, name="SANDBOX_CLIENT_SECRET", defaults={"value": plaintext})
        else:
            app.save()
        Secret.objects.update_or_create(worker=worker, name="SANDBOX_CLIENT_ID", defaults={"value": app.client_id})
        if not SandboxItem.objects.exists():
            SandboxItem.objects.bulk_create(SandboxItem(title=f"Item {i}") for i in range(1, ITEM_COUNT + 1))
    return (
        f"Sandbox provider ready at {app_settings.PUBLIC_URL}/sandbox/ "
        f"(redirect URI {app_settings.REDIRECT_URL}; credentials stored as worker {worker_slug}'s secrets)."
    )


def share_credentials() -> list[str]:
    """Give every active capability on the sandbox preset the provider's client id and secret.

    Only secrets a worker lacks are set, so a value set by hand stays. The plaintext secret exists
    only as the sandbox worker's secret (the provider keeps a hash): it is copied from there, which
    `workers setup` (run by `make run`) creates. Returns a line per worker it filled in, names only.
    """
    source = dict(Secret.objects.filter(worker__slug=WORKER).values_list("name", "value"))
    client_id, client_secret = source.get("SANDBOX_CLIENT_ID"), source.get("SANDBOX_CLIENT_SECRET")
    filled: dict[str, list[str]] = {}
    capabilities = OAuthCapability.objects.filter(provider="sandbox", is_active=True, worker__is_active=True)
    for cap in capabilities.select_related("worker"):
        wanted = {(cap.client_id or {}).get("secret"): client_id, cap.client_secret_ref: client_secret}
        have = set(Secret.objects.filter(worker=cap.worker).values_list("name", flat=True))
        for name, value in wanted.items():
            if not name or name in have:
                continue
            if value is None:
                return [
                    f"Worker {cap.worker.slug} uses the sandbox provider, which is not set up yet: "
                    "run `./workers setup`, then deploy again."
                ]
            Secret.objects.create(worker=cap.worker, name=name, value=value)
            filled.setdefault(cap.worker.slug, []).append(name)
    return [
        f"Set {', '.join(names)} of worker {worker} to the sandbox provider's client credentials."
        for worker, names in sorted(filled.items())
    ]
