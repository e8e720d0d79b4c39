"""`workers env pull`: a worker's secrets plus a fresh access token per connected capability, for `--local` runs."""

from __future__ import annotations

import os
import re
from pathlib import Path

from .dotenv import name_of
from .exceptions import ReauthorizationRequired, TokenRefreshError
from .models import Connection, Secret
from .oauth.tokens import access_token
from .runtime import oauth_env_name

_SAFE = re.compile(r"^[A-Za-z0-9_./:@+-]*$")


def _quote(value: str) -> str:
    if _SAFE.match(value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def pull_env(worker: str, file: str) -> tuple[Path, list[str], list[str]]:
    """Merge the variables into `file` (other lines are kept), mode 0600. Returns (path, names, problems)."""
    values: dict[str, str] = dict(
        Secret.objects.filter(worker__slug=worker).order_by("name").values_list("name", "value")
    )
    problems: list[str] = []
    connections = (
        Connection.objects.select_related("capability")
        .filter(capability__worker__slug=worker, capability__is_active=True)
        .exclude(status=Connection.Status.NOT_CONNECTED)
    )
    for conn in connections:
        capability = conn.capability
        try:
            values[oauth_env_name(capability.name)] = access_token(worker, capability.key)
        except (ReauthorizationRequired, TokenRefreshError) as exc:
            problems.append(f"No token for {capability.key}: {exc}")
    path = Path(file).resolve()
    kept: list[str] = []
    if path.exists():
        # `export NAME=` lines too: the file is read as django-environ reads it (dotenv.py).
        kept = [line for line in path.read_text().splitlines() if name_of(line) not in values]
    lines = kept + [f"{name}={_quote(value)}" for name, value in values.items()]
    fd = os.open(path.with_name(path.name + ".tmp"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write("\n".join(lines) + "\n")
    os.replace(path.with_name(path.name + ".tmp"), path)
    os.chmod(path, 0o600)
    return path, list(values), problems
