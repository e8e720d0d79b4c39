"""capture.known_secrets: the values blanked in everything a run stores."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from django.db import connection

from connections.models import Secret, Worker
from connections.runner.capture import known_secrets

pytestmark = pytest.mark.django_db


def test_a_secret_this_key_cannot_decrypt_does_not_stop_the_others_being_blanked():
    worker = Worker.objects.create(slug="keys", module="keys")
    stale = Secret.objects.create(worker=worker, name="OLD", value="old-secret-value")
    Secret.objects.create(worker=worker, name="NEW", value="new-secret-value")
    # Written under a key this site no longer has, as after a key rotation that missed a row.
    foreign = Fernet(Fernet.generate_key()).encrypt(b"old-secret-value").decode()
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {Secret._meta.db_table} SET value = %s WHERE id = %s", [foreign, stale.pk])

    assert known_secrets("keys") == ["new-secret-value"]
