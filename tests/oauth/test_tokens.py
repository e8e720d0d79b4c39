"""access_token(): the hot path, refresh, and every failure classified, against a provider on 127.0.0.1."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.test.utils import override_settings
from django.utils import timezone

from connections.exceptions import ReauthorizationRequired, TokenRefreshError
from connections.models import Connection
from connections.oauth.tokens import access_token

from .fake_provider import Reply


def expire(conn: Connection) -> None:
    Connection.objects.filter(pk=conn.pk).update(expires_at=timezone.now() - timedelta(seconds=1))


def snapshot(conn: Connection) -> tuple[str, str]:
    conn.refresh_from_db()
    return conn.access_token, conn.refresh_token


def test_a_valid_token_is_handed_out_without_asking_the_provider(fake, fake_connected):
    before = len(fake.token_requests)
    token = access_token("fake", "fakeAuth")
    assert token == fake.issued[-1]["access_token"]
    assert access_token("fake", "fakeAuth") == token
    assert len(fake.token_requests) == before


def test_an_expiring_token_is_refreshed_once_and_the_rotated_refresh_token_kept(fake, fake_connected):
    conn = fake_connected
    old_access, old_refresh = snapshot(conn)
    # An hour-long token inside the refresh margin (60 s by default), though not yet expired.
    Connection.objects.filter(pk=conn.pk).update(
        expires_at=timezone.now() + timedelta(seconds=30), connected_at=timezone.now() - timedelta(minutes=59)
    )
    token = access_token("fake", "fakeAuth")
    assert token != old_access and token == fake.issued[-1]["access_token"]
    assert len(fake.refresh_requests) == 1
    assert fake.refresh_requests[0]["refresh_token"] == old_refresh
    conn.refresh_from_db()
    assert conn.refresh_token == fake.issued[-1]["refresh_token"] != old_refresh
    assert conn.expires_at > timezone.now() + timedelta(minutes=50)
    assert access_token("fake", "fakeAuth") == token
    assert len(fake.refresh_requests) == 1


def test_not_connected_raises_reauthorization_required(fake):
    with pytest.raises(ReauthorizationRequired) as caught:
        access_token("fake", "fakeAuth")
    assert "not connected" in str(caught.value) and "workers oauth start fakeAuth" in str(caught.value)


def test_expired_without_refresh_token_needs_reauthorization(fake, fake_connected):
    conn = fake_connected
    Connection.objects.filter(pk=conn.pk).update(refresh_token="", has_refresh_token=False)
    expire(conn)
    with pytest.raises(ReauthorizationRequired, match="no refresh token"):
        access_token("fake", "fakeAuth")
    conn.refresh_from_db()
    assert conn.status == Connection.Status.NEEDS_REAUTH
    assert fake.refresh_requests == []


def test_invalid_grant_marks_needs_reauthorization(fake, fake_connected):
    conn = fake_connected
    before = snapshot(conn)
    fake.revoked_refresh_tokens.add(before[1])
    expire(conn)
    with pytest.raises(ReauthorizationRequired) as caught:
        access_token("fake", "fakeAuth")
    assert "invalid_grant" in str(caught.value) and "reconnect fakeAuth" in str(caught.value)
    conn.refresh_from_db()
    assert conn.status == Connection.Status.NEEDS_REAUTH
    assert "invalid or revoked" in conn.last_error
    assert snapshot(conn) == before  # kept, so a support engineer can still look
    # No retry storm: once marked, callers fail at once without asking the provider.
    with pytest.raises(ReauthorizationRequired):
        access_token("fake", "fakeAuth")
    assert len(fake.refresh_requests) == 1


FAILURES = {
    "500": (Reply(status=500, body="oops", content_type="text/plain"), "unavailable", "HTTP 500"),
    "503-json": (Reply(status=503, body='{"error": "x"}'), "unavailable", "HTTP 503"),
    "429": (Reply(status=429, body="{}", headers={"Retry-After": "7"}), "unavailable", "HTTP 429"),
    "html": (
        Reply(status=200, body="<html><body>Maintenance</body></html>", content_type="text/html"),
        "invalid_response",
        "HTML page",
    ),
    "garbage": (
        Reply(status=200, body="\x00\x01garbage", content_type="application/octet-stream"),
        "invalid_response",
        "unreadable",
    ),
    "no-access-token": (
        Reply(status=200, body=json.dumps({"token_type": "bearer"})),
        "invalid_response",
        "no access_token",
    ),
    "temporarily_unavailable": (
        Reply(status=400, body=json.dumps({"error": "temporarily_unavailable"})),
        "temporarily_unavailable",
        "temporarily_unavailable",
    ),
}


@pytest.mark.parametrize("case", list(FAILURES))
def test_retryable_failures_keep_the_refresh_token(fake, fake_connected, case):
    reply, code, text = FAILURES[case]
    conn = fake_connected
    before = snapshot(conn)
    expire(conn)
    fake.script.append(reply)
    with pytest.raises(TokenRefreshError) as caught:
        access_token("fake", "fakeAuth")
    error = caught.value
    assert error.retryable and code in str(error) and text in str(error)
    assert "Maintenance" not in str(error) and "garbage" not in str(error)  # no raw body in messages
    if case == "429":
        assert error.retry_after == 7
    conn.refresh_from_db()
    assert conn.status == Connection.Status.REFRESH_FAILING
    assert conn.failure_count == 1 and text in conn.last_error
    assert snapshot(conn) == before
    # The next call tries again, and a success heals the connection.
    token = access_token("fake", "fakeAuth")
    conn.refresh_from_db()
    assert conn.status == Connection.Status.CONNECTED and conn.failure_count == 0 and conn.last_error == ""
    assert token == conn.access_token != before[0]


def test_timeout_is_retryable(fake, fake_connected):
    conn = fake_connected
    before = snapshot(conn)
    expire(conn)
    fake.script.append(Reply(body="{}", delay=1.5))
    with override_settings(WORKERS_HTTP_TIMEOUT=0.5), pytest.raises(TokenRefreshError, match="timeout") as caught:
        access_token("fake", "fakeAuth")
    assert caught.value.retryable
    assert snapshot(conn) == before
    assert conn.status == Connection.Status.REFRESH_FAILING and conn.failure_count == 1


def test_connection_refused_is_retryable(fake, fake_connected):
    conn = fake_connected
    before = snapshot(conn)
    expire(conn)
    conn.capability.token_endpoint = "http://127.0.0.1:9/token"  # the discard port: nothing listens
    conn.capability.save()
    with pytest.raises(TokenRefreshError, match="could not connect") as caught:
        access_token("fake", "fakeAuth")
    assert caught.value.retryable
    conn.refresh_from_db()
    assert conn.status == Connection.Status.REFRESH_FAILING and snapshot(conn) == before


def test_a_rejected_client_is_not_retryable(fake, fake_connected):
    conn = fake_connected
    before = snapshot(conn)
    expire(conn)
    fake.script.append(Reply(status=401, body=json.dumps({"error": "invalid_client"})))
    with pytest.raises(TokenRefreshError, match="invalid_client") as caught:
        access_token("fake", "fakeAuth")
    assert not caught.value.retryable
    assert snapshot(conn) == before
    assert conn.status == Connection.Status.REFRESH_FAILING and conn.failure_count == 1


def test_a_still_valid_token_is_served_while_refreshes_fail(fake, fake_connected):
    conn = fake_connected
    Connection.objects.filter(pk=conn.pk).update(
        status=Connection.Status.REFRESH_FAILING, failure_count=3, last_error="unavailable (HTTP 503)"
    )
    assert access_token("fake", "fakeAuth") == conn.access_token
    assert fake.refresh_requests == []


def test_insecure_token_endpoints_are_refused(fake, fake_connected):
    conn = fake_connected
    expire(conn)
    conn.capability.token_endpoint = "http://provider.example.test/token"
    conn.capability.save()
    with pytest.raises(TokenRefreshError, match="not https"):
        access_token("fake", "fakeAuth")


def test_the_hot_path_is_one_query(fake, fake_connected, django_assert_num_queries):
    with django_assert_num_queries(1):
        token = access_token("fake", "fakeAuth")
    assert token == fake_connected.access_token


def test_a_wrong_key_fails_loudly_instead_of_handing_out_ciphertext(fake, fake_connected):
    from cryptography.fernet import Fernet
    from django.db import connection
    from encrypted_model_fields import fields as emf

    from connections.exceptions import UndecryptableValue

    foreign = Fernet(Fernet.generate_key()).encrypt(b"written-with-another-key").decode()
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE connections_connection SET access_token = %s WHERE id = %s", [foreign, fake_connected.pk]
        )
    with pytest.raises(UndecryptableValue, match="FIELD_ENCRYPTION_KEY") as caught:
        access_token("fake", "fakeAuth")
    assert foreign not in str(caught.value)
    assert emf.CRYPTER  # the configured key is intact; only that value is unreadable


def test_no_refresh_inside_a_database_transaction(fake, fake_connected):
    """A rollback of the caller's transaction would undo the saved answer after the provider rotated
    the refresh token; the refresh is refused instead, and nothing is lost."""
    from django.db import transaction

    conn = fake_connected
    before = snapshot(conn)
    expire(conn)
    with transaction.atomic(), pytest.raises(TokenRefreshError, match="inside a database transaction"):
        access_token("fake", "fakeAuth")
    assert fake.refresh_requests == []
    assert snapshot(conn) == before
    with transaction.atomic():  # a valid token is handed out inside a transaction as anywhere else
        Connection.objects.filter(pk=conn.pk).update(expires_at=timezone.now() + timedelta(hours=1))
        assert access_token("fake", "fakeAuth") == before[0]


def test_provider_echoing_what_we_sent_is_redacted(fake, fake_connected):
    conn = fake_connected
    refresh_token = snapshot(conn)[1]
    expire(conn)
    fake.script.append(
        Reply(
            status=400,
            body=json.dumps(
                {"error": "invalid_request", "error_description": f"unknown refresh_token {refresh_token}"}
            ),
        )
    )
    with pytest.raises(TokenRefreshError) as caught:
        access_token("fake", "fakeAuth")
    assert refresh_token not in str(caught.value) and "[redacted]" in str(caught.value)
    conn.refresh_from_db()
    assert refresh_token not in conn.last_error


def count_decryptions(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    from encrypted_model_fields import fields as emf

    decrypted: list[bytes] = []
    real = emf.CRYPTER.decrypt
    monkeypatch.setattr(emf.CRYPTER, "decrypt", lambda token, *a: decrypted.append(token) or real(token, *a))
    return decrypted


def test_a_token_read_again_unchanged_is_not_decrypted_again(fake, fake_connected, monkeypatch):
    decrypted = count_decryptions(monkeypatch)
    token = access_token("fake", "fakeAuth")
    assert [access_token("fake", "fakeAuth") for _ in range(5)] == [token] * 5
    assert len(decrypted) <= 1  # none when this process decrypted it before (the fixture may have)

    # A refresh elsewhere writes a new ciphertext: the row is read on every call, so it shows at once.
    expire(fake_connected)
    refreshed = access_token("fake", "fakeAuth")
    assert refreshed != token and refreshed == fake.issued[-1]["access_token"]
    assert access_token("fake", "fakeAuth") == refreshed


def test_a_token_known_to_this_process_is_refused_under_another_key(fake, fake_connected, monkeypatch):
    from cryptography.fernet import Fernet, MultiFernet
    from encrypted_model_fields import fields as emf

    from connections.exceptions import UndecryptableValue

    token = access_token("fake", "fakeAuth")
    monkeypatch.setattr(emf, "CRYPTER", MultiFernet([Fernet(Fernet.generate_key())]))
    with pytest.raises(UndecryptableValue, match="FIELD_ENCRYPTION_KEY") as caught:
        access_token("fake", "fakeAuth")
    assert token not in str(caught.value)


def test_a_token_not_decrypted_again_is_still_blanked_in_logs(fake, fake_connected):
    from connections.logging import _seen, redact

    token = access_token("fake", "fakeAuth")
    _seen.clear()  # as if a thousand other values had been decrypted since
    assert access_token("fake", "fakeAuth") == token
    assert token not in redact(f"worker printed {token}")


def test_a_process_told_to_remember_no_values_keeps_no_token(fake, fake_connected, monkeypatch, settings):
    from connections.oauth import tokens

    settings.WORKERS_LOG_REDACT_MAX_VALUES = 0
    tokens._decrypted.clear()
    decrypted = count_decryptions(monkeypatch)
    for _ in range(3):
        access_token("fake", "fakeAuth")
    assert len(decrypted) == 3 and tokens._decrypted == {}
