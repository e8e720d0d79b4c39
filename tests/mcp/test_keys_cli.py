"""`workers mcp keys create|list|revoke` and `workers mcp tools` as a person types them."""

from __future__ import annotations

import hashlib

from connections.models import ApiKey

from .conftest import create_key


def test_a_key_is_shown_once_stored_hashed_and_listed_by_prefix(runner_site):
    raw = create_key(runner_site, "cursor", "--tools", "sandbox__getMe,runner-test:add", "--read-only")
    key = ApiKey.objects.get(name="cursor")
    assert key.key_hash == hashlib.sha256(raw.encode()).hexdigest()
    assert raw.startswith(key.prefix) and raw not in str(ApiKey.objects.values())
    assert key.tools == ["sandbox__getMe", "runner-test__add"] and key.read_only
    listed = runner_site.manage("workers", "mcp", "keys", "list")
    assert listed.returncode == 0
    assert key.prefix in listed.stdout and raw not in listed.stdout and "never" in listed.stdout


def test_bad_key_commands_fail_in_one_line(runner_site):
    create_key(runner_site, "taken")
    for args, reason in [
        (["keys", "create", "taken"], "exists already"),
        (["keys", "create", "x", "--tools", "noSuchTool"], "No active tool or database query 'noSuchTool'"),
        (["keys", "create", "y", "--workers", "nobody"], "No deployed worker 'nobody'"),
        (["keys", "create", "z", "--expires-in", "-1"], "--expires-in"),
        (["keys", "revoke", "nobody"], "No API key named 'nobody'"),
    ]:
        done = runner_site.manage("workers", "mcp", *args)
        assert done.returncode != 0, args
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("CommandError: ") and reason in lines[0], done.stderr


def test_tools_lists_the_names_clients_see(runner_site):
    done = runner_site.manage("workers", "mcp", "tools")
    assert done.returncode == 0
    names = {line.split()[0] for line in done.stdout.splitlines()}
    assert {"sandbox__getMe", "runner-test__add", "sandbox__items__query"} <= names
