"""The admin as a logged-in superuser sees it, on a deployed project."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from connections.deploy import deploy

PASSWORD = "pw-for-tests-only-1"


@pytest.fixture
def admin_client(client: Client) -> Client:
    """Logged in through the login form's backend (a password, not force_login): the path a person takes."""
    deploy()
    get_user_model().objects.create_superuser("root", "root@example.test", PASSWORD)
    assert client.login(username="root", password=PASSWORD)
    return client
