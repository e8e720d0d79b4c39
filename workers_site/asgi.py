"""ASGI entry point: `workers_site.asgi:application` (`/mcp/` to the MCP server, the rest to Django)."""

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "workers_site.settings")

# What django.core.asgi.get_asgi_application does, with the handler that runs the middleware in one hop.
django.setup(set_prefix=False)

from workers_site.handler import OneHopASGIHandler  # noqa: E402

django_application = OneHopASGIHandler()

from connections.crypto import assert_keys_can_read  # noqa: E402
from connections.dbpool import close_database_connections  # noqa: E402
from connections.mcp.asgi import Site  # noqa: E402

assert_keys_can_read()
# gunicorn loads this in its master and forks the workers from it: the check's connection (and a
# connection pool, with its threads) must not be shared with them.
close_database_connections()

application = Site(django_application)
