"""`workers mcp [--key NAME]` (an MCP server over stdio), `workers mcp tools`, `workers mcp keys create|list|revoke`."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import CommandError
from django.utils import timezone

from ..exceptions import InvalidApiKey
from ..models import ApiKey
from . import add_command


def _names(text: str | None) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def add_arguments(subparsers: Any) -> None:
    p = add_command(
        subparsers,
        "mcp",
        help="an MCP server over stdio for local agent clients; API keys",
        description=(
            "Serve the deployed workers' tools and synced databases over the Model Context Protocol on\n"
            "stdin/stdout, for an MCP client that starts a command (Claude Desktop, Claude Code). The\n"
            "client acts as the named API key: it sees that key's tools, and its runs carry its name.\n"
            "Over HTTP the site serves the same at /mcp/ (`workers serve`)."
        ),
        example_lines=[
            "python manage.py workers mcp --key claude-desktop",
            "python manage.py workers mcp keys create claude-desktop",
            "python manage.py workers mcp tools",
        ],
    )
    p.add_argument("--key", help="the API key the client acts as (its runs carry its name); may be left out "
                   "when one usable key exists")  # fmt: skip
    p.set_defaults(handler=handle_stdio)
    sub = p.add_subparsers(dest="mcp_command", metavar="SUBCOMMAND")

    tools = add_command(
        sub,
        "tools",
        help="the tool names MCP clients see (for --tools)",
        description="List the names MCP clients see: `<worker>__<tool>`, and `<worker>__<database>__query`.",
        example_lines=["python manage.py workers mcp tools", "python manage.py workers mcp tools --key reader"],
    )
    tools.add_argument("--key", dest="tools_key", help="only those this key may use")
    tools.set_defaults(handler=handle_tools)

    keys = add_command(
        sub,
        "keys",
        help="API keys for MCP clients",
        description="Create, list and revoke the bearer keys MCP clients authenticate with.",
        example_lines=["python manage.py workers mcp keys create reader --read-only"],
    )
    keys_sub = keys.add_subparsers(dest="mcp_keys_command", required=True, metavar="COMMAND")
    create = add_command(
        keys_sub,
        "create",
        help="create a key and print it once",
        description=(
            "Create an API key and print it once: only its SHA-256 is stored. Its scope is a list of\n"
            "workers, a list of tools, or both (neither: every tool); --read-only keeps only tools\n"
            "declared read-only and the database queries."
        ),
        example_lines=[
            "python manage.py workers mcp keys create claude-desktop",
            "python manage.py workers mcp keys create reader --read-only",
            "python manage.py workers mcp keys create gh --workers github --expires-in 30",
        ],
    )
    create.add_argument("name", metavar="NAME", help="a name for the key, shown in runs and lists")
    create.add_argument("--tools", help="comma-separated tool names (see `workers mcp tools`); default all")
    create.add_argument("--workers", help="comma-separated worker slugs; default all")
    create.add_argument("--read-only", action="store_true", help="only read-only tools and database queries")
    create.add_argument("--expires-in", type=float, metavar="DAYS", help="the key stops working after DAYS days")
    create.set_defaults(handler=handle_create)
    add_command(
        keys_sub,
        "list",
        help="names, prefixes, scope, last use; never the keys",
        description="Every API key: its name, prefix, state, last use, expiry and scope; never the key itself.",
        example_lines=["python manage.py workers mcp keys list"],
    ).set_defaults(handler=handle_list)
    revoke = add_command(
        keys_sub,
        "revoke",
        help="the key stops working at once",
        description="Revoke an API key: its next request is refused (401 over HTTP).",
        example_lines=["python manage.py workers mcp keys revoke gh"],
    )
    revoke.add_argument("name", metavar="NAME", help="the key's name")
    revoke.set_defaults(handler=handle_revoke)


def handle_create(command: Any, options: dict[str, Any]) -> None:
    from ..mcp.keys import create_key, scope_text

    expires_at = None
    if options.get("expires_in") is not None:
        if not 0 < options["expires_in"] <= 36500:
            raise CommandError("--expires-in must be between 0 and 36500 days.")
        expires_at = timezone.now() + timedelta(days=options["expires_in"])
    key, raw = create_key(
        options["name"],
        workers=_names(options.get("workers")),
        tools=_names(options.get("tools")),
        read_only=options["read_only"],
        expires_at=expires_at,
    )
    command.stderr.write(
        f"Created API key {key.name!r} ({scope_text(key)}). It is shown once and cannot be shown again; "
        "MCP clients send it as `Authorization: Bearer <key>`:"
    )
    command.stdout.write(raw)


def handle_list(command: Any, options: dict[str, Any]) -> None:
    from ..mcp.keys import describe

    rows = [describe(key) for key in ApiKey.objects.all()]
    if not rows:
        command.stdout.write("No API keys yet: `python manage.py workers mcp keys create NAME`.")
        return
    command.stdout.write(f"{'NAME':<24} {'PREFIX':<14} {'STATE':<8} {'LAST USED':<16}  {'EXPIRES':<16}  SCOPE")
    for row in rows:
        used = timezone.localtime(row["last_used_at"]).strftime("%Y-%m-%d %H:%M") if row["last_used_at"] else "never"
        expires = timezone.localtime(row["expires_at"]).strftime("%Y-%m-%d %H:%M") if row["expires_at"] else "never"
        command.stdout.write(
            f"{row['name'][:24]:<24} {row['prefix']:<14} {row['state']:<8} {used:<16}  {expires:<16}  {row['scope']}"
        )


def handle_revoke(command: Any, options: dict[str, Any]) -> None:
    from ..mcp.keys import revoke_key

    key = revoke_key(options["name"])
    command.stdout.write(command.style.SUCCESS(f"Revoked API key {key.name!r}: it is refused from now on."))


def handle_tools(command: Any, options: dict[str, Any]) -> None:
    from ..mcp import catalog
    from ..mcp.keys import named_key

    entries = catalog.visible(named_key(options["tools_key"])) if options.get("tools_key") else catalog.all_entries()
    if not entries:
        command.stdout.write("No tools: run `python manage.py workers deploy`.")
    for entry in entries:
        flag = "read-only" if entry.read_only else ""
        command.stdout.write(f"{entry.name:<48} {flag:<9} {entry.title}")


def _stdio_key(name: str | None) -> ApiKey:
    from ..mcp.keys import named_key

    if name:
        return named_key(name)
    usable = list(ApiKey.objects.usable()[:2])
    if len(usable) == 1:
        return named_key(usable[0].name)
    if not usable:
        raise InvalidApiKey("No API key yet: create one with `python manage.py workers mcp keys create NAME`.")
    raise InvalidApiKey("Several API keys exist: pass --key NAME (the client's runs carry that name).")


def handle_stdio(command: Any, options: dict[str, Any]) -> None:
    import anyio
    from mcp.server.stdio import stdio_server

    from ..mcp.server import build_server

    key = _stdio_key(options.get("key"))
    server = build_server(key_id=key.pk)

    async def serve() -> None:
        async with stdio_server() as (read_stream, write_stream):
            await server.run(read_stream, write_stream, server.create_initialization_options())

    anyio.run(serve)
