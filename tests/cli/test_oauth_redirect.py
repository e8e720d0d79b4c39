"""`workers oauth show-redirect-url` prints PUBLIC_URL + /oauth/callback/, the one URL to register."""

from __future__ import annotations

import pytest
from django.test import override_settings

from .conftest import workers


@pytest.mark.parametrize(
    ("public_url", "expected"),
    [
        ("https://workers.example.com", "https://workers.example.com/oauth/callback/"),
        ("https://workers.example.com/", "https://workers.example.com/oauth/callback/"),
        ("http://127.0.0.1:8123", "http://127.0.0.1:8123/oauth/callback/"),
    ],
)
def test_redirect_url_follows_public_url(public_url, expected):
    with override_settings(PUBLIC_URL=public_url):
        assert workers("oauth", "show-redirect-url") == expected + "\n"


def test_redirect_url_in_a_real_process(manage):
    result = manage("workers", "oauth", "show-redirect-url", PUBLIC_URL="https://sub.example.org/")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "https://sub.example.org/oauth/callback/\n"
