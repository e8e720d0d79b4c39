"""`make run` keeps the URL it serves at as PUBLIC_URL in .env, so later shells use the same one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from workers_site.envfile import MANAGED_MARK

from .conftest import ROOT


def keep(env_file: Path, port: str, **env: str) -> str:
    """What the Makefile's `run` target runs, as it runs it."""
    environment = {k: v for k, v in os.environ.items() if k != "PUBLIC_URL"} | env
    done = subprocess.run(
        [sys.executable, "-m", "workers_site.envfile", "--file", str(env_file), "--keep-public-url", "127.0.0.1", port],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def public_url_lines(env_file: Path) -> list[str]:
    return [line for line in env_file.read_text().splitlines() if line.startswith("PUBLIC_URL")]


def test_the_served_url_is_written_and_follows_the_port(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("SECRET_KEY=x\n")
    assert keep(env_file, "8431") == "http://127.0.0.1:8431"
    assert public_url_lines(env_file) == ["PUBLIC_URL=http://127.0.0.1:8431"]
    assert env_file.read_text().startswith("SECRET_KEY=x\n")
    assert env_file.stat().st_mode & 0o777 == 0o600
    # A later `make run PORT=...` moves the URL it wrote.
    assert keep(env_file, "8432") == "http://127.0.0.1:8432"
    assert public_url_lines(env_file) == ["PUBLIC_URL=http://127.0.0.1:8432"]


def test_a_public_url_set_by_hand_is_kept(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("PUBLIC_URL=https://workers.example.com\n")
    assert keep(env_file, "8431") == "https://workers.example.com"
    assert env_file.read_text() == "PUBLIC_URL=https://workers.example.com\n"
    # Deleting the mark pins a URL make run wrote.
    other = tmp_path / "other.env"
    keep(other, "8431")
    other.write_text(other.read_text().replace(MANAGED_MARK + "\n", ""))
    assert keep(other, "9000") == "http://127.0.0.1:8431"


def test_the_environment_wins_and_is_not_written(tmp_path):
    env_file = tmp_path / ".env"
    assert keep(env_file, "8431", PUBLIC_URL="https://elsewhere.example.com") == "https://elsewhere.example.com"
    assert not env_file.exists() or public_url_lines(env_file) == []
