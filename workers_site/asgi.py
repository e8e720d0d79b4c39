"""ASGI entry point: `workers_site.asgi:application` (`/mcp/` to the MCP server, the rest to Django)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "workers_site.settings")

django_application = get_asgi_application()

from connections.crypto import assert_keys_can_read  # noqa: E402
from connections.dbpool import close_database_connections  # noqa: E402
from connections.mcp.asgi import Site  # noqa: E402

assert_keys_can_read()
# gunicorn loads this in its master and forks the workers from it: the check's connection (and a
# connection pool, with its threads) must not be shared with them.
close_database_connections()

application = Site(django_application)
