"""`dumpdata` writes encrypted fields as ciphertext, and `loaddata` of it under the same key restores them."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import pytest
from django.utils import timezone

from connections.crypto import assert_keys_can_read, encrypted_columns
from connections.models import AuthorizationAttempt, OAuthCapability

from .conftest import ROOT, subprocess_env
from .test_encryption import FERNET_PREFIX, current_key, new_key, plaintexts, run, store


def manage_on(database: Path | None, *args: str, key: str) -> subprocess.CompletedProcess[str]:
    """`manage.py ...` on the test database, or on the SQLite file `database` when given."""
    if database is None:
        return run([sys.executable, "manage.py", *args], key)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=subprocess_env("http://127.0.0.1:8000", FIELD_ENCRYPTION_KEY=key, DATABASE_URL=f"sqlite:///{database}"),
        capture_output=True,
        text=True,
        timeout=300,
    )


def store_everything() -> dict[str, str]:
    """A value in every encrypted field of every model: secrets, tokens, token response, literal secret, verifier."""
    values = plaintexts()
    store(values)
    tag = values["secret"].rsplit("-", 1)[1]
    values["literal"] = f"literal-canary-{tag}"
    values["verifier"] = f"verifier-canary-{tag}"
    capability = OAuthCapability.objects.get(worker__slug="github", key="githubAuth")
    capability.client_secret_literal = values["literal"]
    capability.save()
    AuthorizationAttempt.objects.create(
        capability=capability,
        state_hash="0" * 64,
        code_verifier=values["verifier"],
        origin=AuthorizationAttempt.Origin.ADMIN,
        expires_at=timezone.now() + dt.timedelta(minutes=10),
    )
    assert_keys_can_read()  # writes the key canary, as the first start-up does
    return values


READBACK = (
    "from connections.models import *; import json; "
    "c = Connection.objects.get(capability__key='githubAuth'); "
    "print(json.dumps({'secret': Secret.objects.get(name='GITHUB_CLIENT_SECRET').value, "
    "'access': c.access_token, 'refresh': c.refresh_token, 'extra': c.extra['instance_url'], "
    "'literal': c.capability.client_secret_literal, "
    "'verifier': AuthorizationAttempt.objects.get().code_verifier}))"
)


@pytest.mark.django_db(transaction=True)
def test_dumpdata_writes_ciphertext_and_loaddata_restores_it_under_the_same_key(tmp_path: Path):
    values = store_everything()
    key = current_key()

    # Syncs refer to beat's periodic tasks, so a loadable backup holds both apps.
    dumped = manage_on(None, "dumpdata", "connections", "django_celery_beat", "--indent", "1", key=key)
    assert dumped.returncode == 0, dumped.stderr
    for plain in values.values():
        assert plain not in dumped.stdout
    # Every encrypted field of every model is in the dump, as ciphertext.
    objects = json.loads(dumped.stdout)
    for model, name, _column in encrypted_columns():
        label = model._meta.label_lower
        if not label.startswith("connections."):
            continue
        written = [o["fields"][name] for o in objects if o["model"] == label and o["fields"].get(name)]
        assert written, f"no {label}.{name} in the dump"
        assert all(v.startswith("fernet:" + FERNET_PREFIX) for v in written), (label, name)

    fixture = tmp_path / "backup.json"
    fixture.write_text(dumped.stdout)
    fresh = tmp_path / "fresh.sqlite3"
    migrated = manage_on(fresh, "migrate", "--no-input", key=key)
    assert migrated.returncode == 0, migrated.stderr
    loaded = manage_on(fresh, "loaddata", str(fixture), key=key)
    assert loaded.returncode == 0, loaded.stderr

    readback = manage_on(fresh, "shell", "-c", READBACK, key=key)
    assert readback.returncode == 0, readback.stderr
    assert json.loads(readback.stdout.strip().splitlines()[-1]) == values
    # ...and stored encrypted once, not the dump's text encrypted again.
    raw = fresh.read_bytes()
    assert b"fernet:" not in raw
    for plain in values.values():
        assert plain.encode() not in raw


@pytest.mark.django_db(transaction=True)
def test_loaddata_under_a_wrong_key_fails_loudly_and_stores_nothing(tmp_path: Path):
    values = store_everything()
    dumped = manage_on(None, "dumpdata", "connections", "django_celery_beat", key=current_key())
    assert dumped.returncode == 0, dumped.stderr
    fixture = tmp_path / "backup.json"
    fixture.write_text(dumped.stdout)

    other = new_key()
    fresh = tmp_path / "fresh.sqlite3"
    assert manage_on(fresh, "migrate", "--no-input", key=other).returncode == 0
    loaded = manage_on(fresh, "loaddata", str(fixture), key=other)
    assert loaded.returncode != 0
    assert "was dumped under a key that is not in FIELD_ENCRYPTION_KEY" in loaded.stderr
    count = manage_on(
        fresh, "shell", "-c", "from connections.models import Secret; print(Secret.objects.count())", key=other
    )
    assert count.stdout.strip().splitlines()[-1] == "0"
    for plain in values.values():
        assert plain not in loaded.stdout + loaded.stderr


def test_a_site_dump_after_a_real_connect_holds_no_token_code_state_or_verifier(site):
    from urllib.parse import parse_qs, urlparse

    from django.contrib.sessions.backends.db import SessionStore

    from connections.models import Connection
    from tests.oauth_helpers import consent, start_in_admin

    session = site.admin_session()
    start = start_in_admin(site, session, "sandbox", "sandboxAuth")
    callback = consent(session, start.headers["Location"])
    sent = parse_qs(urlparse(callback).query)
    code, state = sent["code"][0], sent["state"][0]
    assert session.get(callback, timeout=20).status_code == 200
    conn = Connection.objects.get(capability__key="sandboxAuth")
    verifier = AuthorizationAttempt.objects.get(capability__key="sandboxAuth").code_verifier
    credentials = {"code": code, "state": state, "access": conn.access_token, "refresh": conn.refresh_token}
    if verifier:
        credentials["verifier"] = verifier

    # The whole site but the sandbox provider's own tables (it plays the provider, which keeps its tokens).
    dumped = run([sys.executable, "manage.py", "dumpdata", "--exclude", "oauth2_provider"], current_key())
    assert dumped.returncode == 0, dumped.stderr
    text = dumped.stdout
    for row in json.loads(text):
        if row["model"] == "sessions.session":  # signed and base64-encoded: look inside too
            text += json.dumps(SessionStore().decode(row["fields"]["session_data"]))
    assert '"model": "connections.connection"' in text
    for what, value in credentials.items():
        assert value not in text, f"the {what} is in the dump"
