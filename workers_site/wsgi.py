"""WSGI entry point: `workers_site.wsgi:application`."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "workers_site.settings")

application = get_wsgi_application()

# Refuse to serve when the configured keys cannot read what is stored.
from connections.crypto import assert_keys_can_read  # noqa: E402

assert_keys_can_read()

# gunicorn preloads this module before forking: no worker may inherit the check's connection.
from django.db import connections  # noqa: E402

connections.close_all()
