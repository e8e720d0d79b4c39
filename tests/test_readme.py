"""The README's worker example is real code: it imports, deploys, and schedules its sync."""

from __future__ import annotations

import re
import sys
import types

import pytest
from django.test import override_settings

from connections import registry
from connections.deploy import deploy
from connections.models import OAuthCapability, Sync

from .conftest import ROOT


def readme_example() -> str:
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    [example] = [block for block in blocks if block.startswith("# my_workers/notes.py")]
    return example


@pytest.mark.django_db
def test_readme_worker_example_deploys():
    module = types.ModuleType("readme_notes_example")
    exec(compile(readme_example(), "README.md", "exec"), module.__dict__)  # noqa: S102
    sys.modules[module.__name__] = module
    try:
        with override_settings(WORKER_MODULES=[module.__name__]):
            registry.clear_cache()
            report = deploy()
    finally:
        del sys.modules[module.__name__]
    assert "+ worker notes" in report.changes
    assert report.missing == {"notes": ["NOTES_CLIENT_ID", "NOTES_CLIENT_SECRET"]}
    assert OAuthCapability.objects.get(key="notesAuth").access_token_expire_ms == 3_600_000
    assert Sync.objects.get(key="notesSync").periodic_task.interval.every == 60
