"""Fixtures for the OAuth tests: a fake provider deployed as a worker, and connected capabilities."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from connections.models import Connection

from ..oauth_helpers import start_in_admin
from .fake_provider import FakeProvider, deploy_fake_worker, running


@pytest.fixture
def fake(site: Any, request: pytest.FixtureRequest) -> Iterator[FakeProvider]:
    """A fake provider (style from `@pytest.mark.parametrize("fake", [...], indirect=True)`), deployed as worker `fake`."""
    style = getattr(request, "param", "plain")
    with running(FakeProvider(style=style)) as provider:
        undo = deploy_fake_worker(provider)
        yield provider
        undo()


def connect_fake(site: Any, key: str = "fakeAuth", worker: str = "fake") -> Connection:
    """Connect through the admin; the fake provider's /authorize redirects straight back to the callback."""
    session = site.admin_session()
    start = start_in_admin(site, session, worker, key)
    final = session.get(start.headers["Location"], timeout=20)
    assert final.status_code == 200, (final.status_code, final.text[:1000])
    assert f"Connected {key}" in final.text, final.text[:2000]
    return Connection.objects.get(capability__worker__slug=worker, capability__key=key)


@pytest.fixture
def fake_connected(site: Any, fake: FakeProvider) -> Connection:
    return connect_fake(site)
