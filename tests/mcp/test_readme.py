"""The README's "Use the tools from an agent": every client configuration there has the shape clients and this site accept."""

from __future__ import annotations

import json
import re
import shlex

from connections.cli import mcp as mcp_cli
from connections.management.commands.workers import Command
from tests.conftest import ROOT

TITLE = "## Use the tools from an agent"


def _section() -> str:
    text = (ROOT / "README.md").read_text()
    assert TITLE in text, f'README.md has no section "{TITLE}"'
    start = text.index(TITLE) + len(TITLE)
    end = text.find("\n## ", start)
    return text[start : end if end != -1 else len(text)]


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", _section(), flags=re.S)


def _workers_options(argv: list[str]) -> dict:
    """What `manage.py workers ARGV...` would run, parsed by the command's own parser."""
    parser = Command().create_parser("manage.py", "workers")
    return vars(parser.parse_args(argv))


def _check_stdio_command(argv: list[str]) -> None:
    assert argv[0].endswith("python") and argv[1].endswith("manage.py") and argv[2] == "workers", argv
    options = _workers_options(argv[3:])
    assert options["handler"] is mcp_cli.handle_stdio and options["key"], argv


def test_client_configurations_have_the_right_shape() -> None:
    servers = [json.loads(block)["mcpServers"]["workers"] for block in _blocks("json")]
    stdio = [server for server in servers if "command" in server]
    http = [server for server in servers if server.get("type") == "http"]
    assert stdio and http and len(stdio) + len(http) == len(servers)
    for server in stdio:
        _check_stdio_command([server["command"], *server["args"]])
        assert server["env"]["DJANGO_SETTINGS_MODULE"] == "workers_site.settings"
    for server in http:
        assert server["url"].startswith("https://") and server["url"].endswith("/mcp/")
        assert server["headers"]["Authorization"].startswith("Bearer wmcp_")

    claude = [line for block in _blocks("sh") for line in block.splitlines() if line.startswith("claude mcp add")]
    assert len(claude) == 2
    for line in claude:
        argv = shlex.split(line)
        if "--" in argv:
            _check_stdio_command(argv[argv.index("--") + 1 :])
        else:
            assert argv[argv.index("--transport") + 1] == "http"
            assert any(arg.endswith("/mcp/") for arg in argv)
            assert argv[argv.index("--header") + 1].startswith("Authorization: Bearer wmcp_")


def test_the_commands_shown_parse() -> None:
    lines = [line for block in _blocks("sh") for line in block.splitlines() if line.startswith("python manage.py")]
    assert lines
    for line in lines:
        argv = shlex.split(line, comments=True)
        assert argv[:3] == ["python", "manage.py", "workers"], line
        assert _workers_options(argv[3:])["handler"].__module__ == mcp_cli.__name__, line
